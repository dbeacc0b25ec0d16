package jtune.methods.cli;

import static jtune.methods.cli.Run.jtune;
import static jtune.methods.cli.Run.STORIES;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code jtune finetune} over a folder written by {@code jtune quantize} (stories260K): qlora and peqa take the stored
 * layers as they are and say that --bits and --group do not apply, train and write their files; a PEQA scale set
 * trained over the folder swaps back in to the perplexity the run ended with; peqa over NF4 layers is refused in one
 * sentence (exit 1) and writes nothing.
 */
class FinetuneQuantizedFolderTest {
    private static final Pattern PERPLEXITY = Pattern.compile("held-out perplexity  ([0-9.]+) -> ([0-9.]+)");
    private static final String NOTE = "takes its layers as they are, so --bits and --group do not apply";

    @TempDir
    Path tmp;
    private Path text;

    @BeforeEach
    void needsData() throws IOException {
        Run.assumeStories();
        text = Run.textHead(tmp.resolve("text.txt"), 30_000);
    }

    private Path quantize(String name, String... options) {
        return Run.quantize(tmp.resolve(name), STORIES, options);
    }

    private Run finetune(Path model, String method, String out, String... more) {
        List<String> argv = new ArrayList<>(List.of("finetune", "--model", model.toString(), "--data", text.toString(),
                "--method", method, "--seq", "64", "--batch", "2", "--out", tmp.resolve(out).toString()));
        argv.addAll(List.of(more));
        return jtune(argv.toArray(String[]::new));
    }

    @Test
    void qloraOverAnNf4FolderTakesItsLayersAsStored() {
        Path nf4 = quantize("nf4", "--method", "nf4", "--group", "32");
        Run r = finetune(nf4, "qlora", "adapter", "--steps", "3", "--lr", "1e-2", "--group", "128");
        assertThat(r.status()).as(r.err()).isZero();
        assertThat(r.err()).contains(nf4 + " is stored quantized; qlora " + NOTE)
                .contains("quantized nf4 b32 by nf4").contains("over the stored quantized layers")
                .contains(": 35 layers, ");
        assertThat(r.out()).containsPattern(PERPLEXITY).contains("trained steps 1..3: loss ");
        assertThat(tmp.resolve("adapter/adapter_config.json")).isRegularFile();
        assertThat(tmp.resolve("adapter/adapter_model.safetensors")).isRegularFile();

        Run lora = finetune(nf4, "lora", "lora", "--steps", "1");
        assertThat(lora.status()).as(lora.err()).isZero();
        assertThat(lora.err()).doesNotContain(NOTE).contains("over the stored quantized layers");
    }

    @Test
    void peqaOverAnRtnFolderSavesAScaleSetThatSwapsBackIn() {
        Path rtn = quantize("rtn", "--method", "rtn", "--bits", "4", "--group", "32");
        Run trained = finetune(rtn, "peqa", "scales", "--steps", "3", "--lr", "1e-3");
        assertThat(trained.status()).as(trained.err()).isZero();
        assertThat(trained.err()).contains("peqa " + NOTE).contains("peqa: trainable scales of ");
        Matcher m = PERPLEXITY.matcher(trained.out());
        assertThat(m.find()).isTrue();
        assertThat(m.group(2)).isNotEqualTo(m.group(1));
        assertThat(tmp.resolve("scales/peqa_config.json")).content().contains("\"bits\":4", "\"group_size\":32");

        Run swapped = finetune(rtn, "peqa", "again", "--steps", "0", "--scales", tmp.resolve("scales").toString());
        assertThat(swapped.status()).as(swapped.err()).isZero();
        assertThat(swapped.out()).contains("held-out perplexity  " + m.group(2) + " -> " + m.group(2));
    }

    @Test
    void peqaOverNf4LayersIsRefused() {
        Path nf4 = quantize("nf4", "--method", "nf4");
        Run r = finetune(nf4, "peqa", "none", "--steps", "1");
        assertThat(r.status()).isEqualTo(1);
        assertThat(r.err().lines().filter(l -> l.startsWith("jtune: PEQA")).toList()).singleElement().asString()
                .contains("PEQA trains the scales of integer codes, but layer 'model.layers.0.self_attn.q_proj' is "
                        + "stored as nf4 b64");
        assertThat(r.err()).doesNotContain("Exception");
        assertThat(tmp.resolve("none")).doesNotExist();
    }
}
