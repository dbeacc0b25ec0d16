package jtune.methods.cli;

import java.io.IOException;
import java.nio.file.Path;
import jtune.engine.cli.LoadOptionProvider;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.nn.WeightTransform;
import jtune.methods.peft.LoraAdapters;
import jtune.methods.peft.LoraConfig;

/**
 * {@code --adapter DIR} of {@code jtune eval} and {@code jtune generate}: the model with a LoRA adapter in PEFT's
 * layout ({@link LoraAdapters}), over its layers as they are (dense, or stored quantized in a folder written by
 * {@code jtune quantize}), unmerged. Every targeted layer of the model must find its A and B in the adapter, with this
 * model's shapes, and the adapter must hold nothing else. When jtune saved the adapter over other kinds of layer than
 * these (a QLoRA adapter over the f32 model), the load description says so.
 */
public final class AdapterOption implements LoadOptionProvider {
    @Override
    public String option() {
        return "--adapter";
    }

    @Override
    public Attachment open(Path dir) throws IOException {
        LoraConfig c = LoraAdapters.readConfig(dir);
        checkRank(dir, c.rank());
        LoraAdapters adapters = new LoraAdapters(c, 0);
        WeightTransform t = adapters.over(WeightTransform.IDENTITY, 0);
        return new Attachment(t, () -> {
            if (adapters.weights().isEmpty()) {
                throw new SafeTensors.FormatException(dir.resolve(LoraAdapters.CONFIG) + " targets " + c.targets()
                        + ", which this model has none of");
            }
            adapters.load(dir);
            String trained = LoraAdapters.savedBases(dir), here = adapters.bases();
            return "the LoRA adapter " + dir + " (r " + c.rank() + " on " + adapters.weights().size() + " layers"
                    + (trained == null || trained.equals(here) ? ")" : "; note: it was trained over " + trained
                    + " layers and is applied here over " + here + " ones, so its outputs differ from the fine-tuned "
                    + "model's)");
        });
    }

    /**
     * Fails unless {@code dir}'s tensors hold LoRA factors and all of them are non-empty matrices of rank {@code r},
     * the config's: r sizes the adapters made while the model is built, before their tensors are read, so a config
     * whose r its own factors do not have must be refused first (an r of 2^31 - 1 would otherwise ask for hundreds
     * of gigabytes; now r is at most the file's size over 4 bytes).
     */
    private static void checkRank(Path dir, int r) throws IOException {
        try (SafeTensorsReader f = SafeTensorsReader.open(dir.resolve(LoraAdapters.WEIGHTS))) {
            boolean any = false;
            for (SafeTensors.Entry e : f.entries()) {
                boolean a = e.name().endsWith(".lora_A.weight");
                if (!a && !e.name().endsWith(".lora_B.weight")) {
                    continue;
                }
                long[] d = e.dims();
                if (d.length != 2 || d[0] < 1 || d[1] < 1 || d[a ? 0 : 1] != r) {
                    throw new SafeTensors.FormatException(f.file() + ": tensor '" + e.name() + "' is " + e.shape()
                            + ", but with the r " + r + " that " + dir.resolve(LoraAdapters.CONFIG) + " gives it must "
                            + "be " + (a ? "[" + r + ", in]" : "[out, " + r + "]") + " with " + (a ? "in" : "out")
                            + " at least 1; the two files are not of one adapter");
                }
                any = true;
            }
            if (!any) {
                throw new SafeTensors.FormatException(f.file() + " holds no LoRA factor (no tensor named "
                        + "'base_model.model.<layer>.lora_A.weight' or '.lora_B.weight'), so it is not a LoRA adapter");
            }
        }
    }
}
