package jtune.engine.data;

import java.nio.charset.StandardCharsets;

/**
 * A deterministic synthetic corpus: short children's stories in a small generated English (ten characters,
 * a few dozen nouns, a handful of episodes), one story per line. The grammar keeps agreement a model can
 * learn: "she"/"her" for the girls and "he"/"his"/"him" for the boys, "a" or "an" by the next word's first
 * letter, "1 apple" but "2 apples", and counting episodes whose sums and differences are right. The same
 * seed gives the same bytes on every JVM (the generator is a hand-written SplitMix64, not a JDK class whose
 * algorithm may change). Half a megabyte takes a few tens of milliseconds.
 */
public final class SyntheticStories {

    private record Hero(String name, String he, String his, String him, String kind) {
    }

    private static final Hero[] HEROES = {
            new Hero("Lily", "she", "her", "her", "girl"), new Hero("Tom", "he", "his", "him", "boy"),
            new Hero("Mia", "she", "her", "her", "girl"), new Hero("Ben", "he", "his", "him", "boy"),
            new Hero("Anna", "she", "her", "her", "girl"), new Hero("Sam", "he", "his", "him", "boy"),
            new Hero("Sue", "she", "her", "her", "girl"), new Hero("Max", "he", "his", "him", "boy"),
            new Hero("Lucy", "she", "her", "her", "girl"), new Hero("Jack", "he", "his", "him", "boy")};
    private static final String[] ANIMALS = {"cat", "dog", "bird", "frog", "duck", "bunny", "fox", "owl"};
    private static final String[] THINGS = {"ball", "kite", "hat", "box", "book", "drum", "doll", "boat"};
    private static final String[] COLORS = {"red", "blue", "green", "yellow", "big", "little", "orange", "old"};
    private static final String[] PLACES = {"park", "garden", "forest", "yard", "meadow", "woods"};
    private static final String[] SPOTS = {"under a rock", "behind a tree", "in the grass", "near the pond",
            "under the bed", "in a big box"};
    private static final String[] FOODS = {"apple", "cookie", "egg", "orange", "banana", "carrot"};
    private static final String[] TRAITS = {"kind", "happy", "brave", "funny", "curious"};

    private long state;

    private SyntheticStories(long seed) {
        this.state = seed;
    }

    /** Whole stories, one per line ({@code '\n'}-terminated), until at least {@code minBytes} of ASCII. */
    public static byte[] generate(long seed, int minBytes) {
        if (minBytes < 0) {
            throw new IllegalArgumentException("synthetic corpus: size must not be negative, got " + minBytes);
        }
        SyntheticStories g = new SyntheticStories(seed);
        StringBuilder sb = new StringBuilder(minBytes + 1024);
        while (sb.length() < minBytes) {
            g.story(sb);
            sb.append('\n');
        }
        return sb.toString().getBytes(StandardCharsets.US_ASCII);
    }

    /** One story: an introduction, two or three different episodes, an ending. */
    private void story(StringBuilder sb) {
        Hero h = pick(HEROES);
        Hero friend = pick(HEROES);
        while (friend == h) {
            friend = pick(HEROES);
        }
        String thing = pick(THINGS);
        String place = pick(PLACES);
        String animal = pick(ANIMALS);
        switch (next(2)) {
            case 0 -> sb.append("Once upon a time, there was a little ").append(h.kind).append(" named ")
                    .append(h.name).append(". ");
            default -> sb.append(h.name).append(" was ").append(article(pick(TRAITS))).append(' ').append(h.kind)
                    .append(" who loved the ").append(place).append(". ");
        }
        sb.append(cap(h.he)).append(" had ").append(article(pick(COLORS))).append(' ').append(thing).append(". ");
        sb.append(cap(h.he)).append(" liked to play with ").append(h.his).append(' ').append(thing)
                .append(" in the ").append(place).append(". ");
        boolean met = false;
        int told = 0;
        for (int e = 0, n = 2 + next(2); e < n; e++) {
            int episode = next(4);
            while ((told >>> episode & 1) != 0) {
                episode = next(4);
            }
            told |= 1 << episode;
            switch (episode) {
                case 0 -> lost(sb, h, thing);
                case 1 -> {
                    hungry(sb, h, animal, place);
                    met = true;
                }
                case 2 -> count(sb, h, friend);
                default -> rain(sb, h, friend, thing);
            }
        }
        if (met) {
            sb.append("From that day on, ").append(h.name).append(" and the ").append(animal)
                    .append(" were best friends. ");
        } else {
            sb.append("At night, ").append(h.name).append(" went to bed. ").append(cap(h.he))
                    .append(" was tired but happy. ");
        }
        sb.append("The end.");
    }

    private void lost(StringBuilder sb, Hero h, String thing) {
        String first = pick(SPOTS);
        String second = pick(SPOTS);
        while (second.equals(first)) {
            second = pick(SPOTS);
        }
        sb.append("One day, ").append(h.name).append(" could not find ").append(h.his).append(' ').append(thing)
                .append(". ").append(cap(h.he)).append(" looked ").append(first).append(", but it was not there. ")
                .append("Then ").append(h.he).append(" looked ").append(second).append(" and found it! ")
                .append(h.name).append(" was happy again. ");
    }

    private void hungry(StringBuilder sb, Hero h, String animal, String place) {
        String food = pick(FOODS);
        sb.append("One day, ").append(h.name).append(" went to the ").append(place).append(" and saw ")
                .append(article(animal)).append(". The ").append(animal).append(" looked sad. \"Why are you sad?\" asked ")
                .append(h.name).append(". \"I am hungry,\" said the ").append(animal).append(". ").append(h.name)
                .append(" gave the ").append(animal).append(' ').append(article(food)).append(". \"Thank you, ")
                .append(h.name).append("!\" said the ").append(animal).append(". ");
    }

    private void count(StringBuilder sb, Hero h, Hero friend) {
        String food = pick(FOODS);
        int had = 1 + next(9);
        if (next(2) == 0) {
            int more = 1 + next(9);
            sb.append(h.name).append(" had ").append(many(had, food)).append(". ").append(friend.name).append(" gave ")
                    .append(h.him).append(' ').append(more).append(" more. Now ").append(h.name).append(" has ")
                    .append(many(had + more, food)).append(". ");
        } else {
            had += 1;
            int ate = 1 + next(had - 1);
            sb.append(h.name).append(" had ").append(many(had, food)).append(". ").append(cap(h.he)).append(" ate ")
                    .append(ate).append(". Now ").append(h.he).append(" has ").append(many(had - ate, food)).append(". ");
        }
    }

    private void rain(StringBuilder sb, Hero h, Hero friend, String thing) {
        sb.append(h.name).append(" met ").append(friend.name).append(" and they played with the ").append(thing)
                .append(". Then the sky got dark and it began to rain. ").append(h.name).append(" ran home. ")
                .append(cap(h.his)).append(" mom gave ").append(h.him).append(" a warm cup of milk. ");
    }

    /** "an apple", "a cookie": the article agrees with the next word's first letter. */
    private static String article(String word) {
        return ("aeiou".indexOf(word.charAt(0)) >= 0 ? "an " : "a ") + word;
    }

    /** "1 apple", "3 apples". */
    private static String many(int n, String noun) {
        return n + " " + (n == 1 ? noun : noun + "s");
    }

    private static String cap(String w) {
        return Character.toUpperCase(w.charAt(0)) + w.substring(1);
    }

    private <T> T pick(T[] options) {
        return options[next(options.length)];
    }

    /** SplitMix64, reduced to [0, bound) (the modulo bias, below 1e-17 here, does not matter). */
    private int next(int bound) {
        state += 0x9E3779B97F4A7C15L;
        long z = state;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z ^= z >>> 31;
        return (int) Long.remainderUnsigned(z, bound);
    }
}
