package jtune.methods.peft;

import java.util.ArrayList;
import java.util.List;

/**
 * The settings of a LoRA adapter, as PEFT's {@code LoraConfig} names them.
 *
 * @param rank    r, the inner dimension of {@code B A}
 * @param alpha   lora_alpha
 * @param dropout lora_dropout, the probability of zeroing an element of the adapter's input while training
 * @param rslora  use_rslora: scale the update by {@code alpha / sqrt(r)} (rank-stabilised) instead of {@code alpha / r}
 * @param targets target_modules: the linear layers of each decoder block that get an adapter, by their Hugging Face
 *                module names ({@code q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj})
 */
public record LoraConfig(int rank, double alpha, double dropout, boolean rslora, List<String> targets) {
    /** The linear layers of a LLaMA decoder block, in model order. */
    public static final List<String> MODULES = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
            "down_proj");

    public LoraConfig {
        if (rank < 1) {
            throw new IllegalArgumentException("the LoRA rank must be at least 1, not " + rank);
        }
        if (!(alpha > 0) || alpha > Float.MAX_VALUE) {
            throw new IllegalArgumentException("the LoRA alpha must be a positive number that an f32 holds (at most "
                    + Float.MAX_VALUE + "), not " + alpha);
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("the LoRA dropout must be in [0, 1), not " + dropout);
        }
        if (targets.isEmpty()) {
            throw new IllegalArgumentException("LoRA needs at least one target module (" + String.join(", ", MODULES)
                    + ")");
        }
        for (String t : targets) {
            if (!MODULES.contains(t)) {
                throw new IllegalArgumentException("unknown LoRA target module '" + t + "'; the modules are "
                        + String.join(", ", MODULES));
            }
        }
        targets = List.copyOf(targets);
    }

    /** The factor of the update {@code B A}: {@code alpha / sqrt(r)} with rsLoRA, else {@code alpha / r}. */
    public double scaling() {
        return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
    }

    /** True when layer {@code layer} ("model.layers.3.mlp.down_proj") is a decoder-block layer among the targets. */
    public boolean targets(String layer) {
        return isBlockLayer(layer) && targets.contains(layer.substring(layer.lastIndexOf('.') + 1));
    }

    /** True for the linear layers of the decoder blocks ("model.layers.N.*"), not the output head. */
    public static boolean isBlockLayer(String layer) {
        return layer.startsWith("model.layers.") && MODULES.contains(layer.substring(layer.lastIndexOf('.') + 1));
    }

    /**
     * The modules of a comma-separated list in the short ("q,k,v,o,gate,up,down") or the full ("q_proj,...") form,
     * in model order, each once.
     */
    public static List<String> parseTargets(String list) {
        List<String> named = new ArrayList<>();
        for (String part : list.split(",")) {
            String t = part.trim();
            String module = t.endsWith("_proj") ? t : t + "_proj";
            if (!MODULES.contains(module)) {
                throw new IllegalArgumentException("--targets: unknown target '" + t + "' in '" + list + "'; the "
                        + "targets are q, k, v, o, gate, up, down (or their full names, q_proj ...)");
            }
            named.add(module);
        }
        return MODULES.stream().filter(named::contains).toList();
    }
}
