package jtune.methods.cli;

import java.io.IOException;
import java.nio.file.Path;
import jtune.engine.cli.LoadOptionProvider;
import jtune.engine.io.SafeTensors;
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
}
