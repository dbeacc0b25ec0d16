package jtune.methods.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import jtune.engine.cli.LoadOptionProvider;
import jtune.engine.io.SafeTensors;
import jtune.engine.nn.WeightTransform;
import jtune.methods.peft.PeqaScales;
import jtune.methods.peft.PeqaWeight;

/**
 * {@code --scales DIR} of {@code jtune eval} and {@code jtune generate}: the model with a PEQA scale set that
 * {@code jtune finetune --method peqa} saved ({@link PeqaScales}). As in that run, every decoder-block linear layer is
 * quantized by round-to-nearest in the set's format and the set's layers become PEQA weights, or, over a folder written
 * by {@code jtune quantize}, the stored layers are taken as they are; the scales are then swapped in, once the set's
 * layers, format and codes (by their CRC-32) are found to be this model's.
 */
public final class ScalesOption implements LoadOptionProvider {
    @Override
    public String option() {
        return "--scales";
    }

    @Override
    public Attachment open(Path dir) throws IOException {
        PeqaScales.Settings settings = PeqaScales.readConfig(dir);
        Map<String, PeqaWeight> made = new LinkedHashMap<>();
        WeightTransform t = PeqaWeight.rtn(settings.format(), settings.layers()::contains, made);
        return new Attachment(t, () -> {
            if (made.isEmpty()) {
                throw new SafeTensors.FormatException(dir.resolve(PeqaScales.CONFIG) + " holds scales for layers "
                        + "such as '" + settings.layers().getFirst() + "', none of which this model has; it was "
                        + "trained for " + settings.baseModel());
            }
            PeqaScales.load(dir, made);
            return "the PEQA scale set " + dir + " (" + made.size() + " layers, " + settings.format() + ")";
        });
    }
}
