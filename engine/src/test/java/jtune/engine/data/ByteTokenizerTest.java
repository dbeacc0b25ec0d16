package jtune.engine.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class ByteTokenizerTest {
    private final ByteTokenizer tok = new ByteTokenizer();

    @Test
    void everyByteIsItsOwnTokenBothWays() {
        byte[] all = new byte[256];
        int[] ids = new int[256];
        for (int i = 0; i < 256; i++) {
            all[i] = (byte) i;
            ids[i] = i;
        }
        assertThat(tok.encode(all)).containsExactly(ids);
        assertThat(tok.decodeBytes(ids)).containsExactly(all);
        assertThat(tok.vocabSize()).isEqualTo(256);
    }

    @Test
    void textRoundTripsThroughUtf8() {
        String text = "Lily had 3 apples. «Grüß dich» 日本 🙂";
        int[] ids = tok.encode(text);
        assertThat(ids).hasSize(text.getBytes(java.nio.charset.StandardCharsets.UTF_8).length);
        assertThat(ids[0]).isEqualTo('L');
        assertThat(tok.decode(ids)).isEqualTo(text);
        assertThat(tok.decode(new int[] {'a', 0xC3, 'b'})).isEqualTo("a\uFFFDb");
    }

    @Test
    void aTokenOutsideTheVocabularyIsNamed() {
        assertThatThrownBy(() -> tok.decode(new int[] {65, 256})).hasMessageContaining("token 256 at position 1");
        assertThatThrownBy(() -> tok.decode(new int[] {-1})).hasMessageContaining("token -1");
    }
}
