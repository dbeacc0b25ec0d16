package jtune.engine.tensor;

/** What an allocation is for; the memory ledger keeps current and peak bytes per category. */
public enum Category {
    FROZEN_WEIGHTS("frozen weights"),
    TRAINABLE_PARAMETERS("trainable parameters"),
    GRADIENTS("gradients"),
    OPTIMIZER_STATE("optimizer state"),
    ACTIVATIONS("saved activations"),
    WORKSPACE("workspace");

    private final String label;

    Category(String label) {
        this.label = label;
    }

    public String label() {
        return label;
    }
}
