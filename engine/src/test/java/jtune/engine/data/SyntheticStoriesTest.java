package jtune.engine.data;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class SyntheticStoriesTest {
    private static final byte[] CORPUS = SyntheticStories.generate(7, 200_000);
    private static final List<String> STORIES = new String(CORPUS, StandardCharsets.US_ASCII).lines().toList();

    @Test
    void theSameSeedGivesTheSameBytesAndAnotherSeedOthers() {
        assertThat(SyntheticStories.generate(7, 200_000)).isEqualTo(CORPUS);
        assertThat(SyntheticStories.generate(8, 200_000)).isNotEqualTo(CORPUS);
        byte[] small = SyntheticStories.generate(7, 1000);
        assertThat(CORPUS).startsWith(small);
    }

    @Test
    void wholeStoriesOfPrintableAsciiOnePerLine() {
        assertThat(CORPUS.length).isBetween(200_000, 202_000);
        int bad = 0;
        for (byte b : CORPUS) {
            bad += b == '\n' || (b >= 32 && b < 127) ? 0 : 1;
        }
        assertThat(bad).as("bytes that are neither printable ASCII nor a newline").isZero();
        assertThat(CORPUS[CORPUS.length - 1]).isEqualTo((byte) '\n');
        assertThat(STORIES).hasSizeGreaterThan(200).allSatisfy(s -> assertThat(s).endsWith(" The end."));
        assertThat(STORIES.stream().distinct().count()).isGreaterThan(STORIES.size() * 9 / 10);
    }

    @Test
    void articlesAgreeWithTheNextWord() {
        String text = new String(CORPUS, StandardCharsets.US_ASCII);
        assertThat(Pattern.compile("\\b[Aa] [aeiou]").matcher(text).find()).isFalse();
        assertThat(Pattern.compile("\\b[Aa]n [^aeiou]").matcher(text).find()).isFalse();
        assertThat(text).contains(" an apple", " an orange", " a cookie");
    }

    @Test
    void pronounsAgreeWithTheHero() {
        Pattern girl = Pattern.compile("^(?:Once upon a time, there was a little girl named \\w+|\\w+ was an? \\w+ girl)");
        Pattern boy = Pattern.compile("^(?:Once upon a time, there was a little boy named \\w+|\\w+ was an? \\w+ boy)");
        int girls = 0, boys = 0;
        for (String s : STORIES) {
            if (girl.matcher(s).find()) {
                girls++;
                assertThat(s).doesNotContainPattern("\\b(?:[Hh]e|[Hh]is|him)\\b");
            } else {
                assertThat(boy.matcher(s).find()).as(s).isTrue();
                boys++;
                assertThat(s).doesNotContainPattern("\\b(?:[Ss]he|[Hh]er)\\b");
            }
        }
        assertThat(girls).isGreaterThan(STORIES.size() / 3);
        assertThat(boys).isGreaterThan(STORIES.size() / 3);
    }

    @Test
    void theCountingIsRightAndPluralsAgree() {
        Pattern more = Pattern.compile("had (\\d+) (\\w+)\\. \\w+ gave \\w+ (\\d+) more\\. Now \\w+ has (\\d+) (\\w+)\\.");
        Pattern ate = Pattern.compile("had (\\d+) (\\w+)\\. \\w+ ate (\\d+)\\. Now \\w+ has (\\d+) (\\w+)\\.");
        String text = new String(CORPUS, StandardCharsets.US_ASCII);
        int checked = 0;
        for (Pattern p : List.of(more, ate)) {
            Matcher m = p.matcher(text);
            while (m.find()) {
                int a = Integer.parseInt(m.group(1)), b = Integer.parseInt(m.group(3)), c = Integer.parseInt(m.group(4));
                assertThat(c).as(m.group()).isEqualTo(p == more ? a + b : a - b).isPositive();
                assertThat(m.group(2).endsWith("s")).as(m.group()).isEqualTo(a != 1);
                assertThat(m.group(5).endsWith("s")).as(m.group()).isEqualTo(c != 1);
                checked++;
            }
        }
        assertThat(checked).isGreaterThan(200);
    }
}
