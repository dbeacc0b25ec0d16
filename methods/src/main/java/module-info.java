/**
 * Methods built on the engine's seams: the post-training quantizers (round-to-nearest, GPTQ, NF4) with
 * ZeroQuant-V2's low-rank error compensation (LoRC), the frozen linear weights they produce, and a driver
 * that quantizes a whole LLaMA-family model, with jtune's saved form of a quantized model and the
 * {@code jtune quantize} command; parameter-efficient fine-tuning (LoRA, QLoRA, PEQA) and the
 * {@code jtune finetune} command, and the {@code --scales} and {@code --adapter} options of {@code jtune eval} and
 * {@code jtune generate}. Depends on the engine only.
 */
module jtune.methods {
    requires transitive jtune.engine;

    exports jtune.methods.quant;
    exports jtune.methods.peft;

    provides jtune.engine.cli.CommandProvider with jtune.methods.cli.FinetuneCommand,
            jtune.methods.cli.QuantizeCommand;
    provides jtune.engine.io.QuantizedLayersProvider with jtune.methods.quant.QuantizedModelReader;
    provides jtune.engine.cli.LoadOptionProvider with jtune.methods.cli.ScalesOption,
            jtune.methods.cli.AdapterOption;
}
