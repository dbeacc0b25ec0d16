package jtune.engine.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {

    @Test
    void parsesEveryKindOfValue() {
        Object v = Json.parse(" {\"a\": [1, -2, 3.5, 1e3, -0.25E-2], \"b\": {\"c\": null, \"d\": true, \"e\": false},"
                + " \"s\": \"x\\\"y\\\\z\\/\\n\\t\\u00e9\\u20AC\", \"big\": 12345678901234567890, \"empty\": [], \"o\": {}} ");
        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("a", List.of(1L, -2L, 3.5, 1000.0, -0.0025));
        Map<String, Object> b = new LinkedHashMap<>();
        b.put("c", null);
        b.put("d", true);
        b.put("e", false);
        expected.put("b", b);
        expected.put("s", "x\"y\\z/\n\té€");
        expected.put("big", 1.2345678901234567e19);
        expected.put("empty", List.of());
        expected.put("o", Map.of());
        assertThat(v).isEqualTo(expected);
        assertThat(List.<Object>copyOf(((Map<?, ?>) v).keySet())).containsExactly("a", "b", "s", "big", "empty", "o");
    }

    @Test
    void writesWhatItReadsBack() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", "tab\there \"quoted\" \u0001 é");
        m.put("n", 42L);
        m.put("x", 0.1);
        m.put("f", 1e-6f);
        m.put("list", List.of(true, false, "z"));
        m.put("nothing", null);
        String text = Json.write(m);
        assertThat(text).startsWith("{\"name\":\"tab\\there \\\"quoted\\\" \\u0001 é\",\"n\":42,\"x\":0.1,");
        Map<String, Object> back = Json.parseObject(text);
        assertThat(back.get("name")).isEqualTo(m.get("name"));
        assertThat(back.get("x")).isEqualTo(0.1);
        assertThat(Float.parseFloat(String.valueOf(back.get("f")))).isEqualTo(1e-6f);
        assertThat(back.get("list")).isEqualTo(List.of(true, false, "z"));
        assertThat(back).containsEntry("nothing", null);
        assertThatThrownBy(() -> Json.write(Double.NaN)).hasMessageContaining("no form");
    }

    @Test
    void rejectsMalformedTextWithOneSentence() {
        String[][] cases = {
                {"", "unexpected end of text"},
                {"{\"a\":1,}", "expected a string key"},
                {"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
                {"[1 2]", "expected ',' or ']'"},
                {"{\"a\":1,\"a\":2}", "key \"a\" appears twice"},
                {"\"abc", "unterminated string"},
                {"\"a\u0001\"", "control character U+0001"},
                {"\"\\x\"", "unknown escape \\x"},
                {"\"\\u12G4\"", "bad hex digit"},
                {"01", "unexpected '1' after the JSON value"},
                {"-", "digits after '-'"},
                {"1.", "digits after '.'"},
                {"1e", "digits in its exponent"},
                {"tru", "expected a value"},
                {"{} x", "after the JSON value"},
                {"[" .repeat(Json.MAX_DEPTH + 1), "nesting deeper than"},
        };
        for (String[] c : cases) {
            assertThatThrownBy(() -> Json.parse(c[0])).as(c[0]).isInstanceOf(Json.JsonException.class)
                    .hasMessageStartingWith("malformed JSON at offset").hasMessageContaining(c[1])
                    .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
        }
        assertThatThrownBy(() -> Json.parseObject("[1]")).hasMessage("expected a JSON object, got array");
    }

    @Test
    void nestingUpToTheLimitIsFine() {
        String deep = "[".repeat(Json.MAX_DEPTH) + "]".repeat(Json.MAX_DEPTH);
        assertThat(Json.parse(deep)).isInstanceOf(List.class);
    }
}
