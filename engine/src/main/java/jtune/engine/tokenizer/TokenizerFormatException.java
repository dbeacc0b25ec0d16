package jtune.engine.tokenizer;

import java.io.IOException;

/**
 * A tokenizer file that cannot be read: malformed, inconsistent, or using a component or option jtune does not
 * support. The message is one sentence naming the file, the place in it and what is wrong.
 */
public final class TokenizerFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    public TokenizerFormatException(String message) {
        super(message);
    }

    public TokenizerFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
