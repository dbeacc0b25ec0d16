package jtune.engine.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.util.Set;
import jtune.engine.backend.Backend;

/**
 * A {@code jtune} command contributed by another module (found with {@link java.util.ServiceLoader}), for
 * commands the engine cannot hold because they need that module, such as {@code finetune} and
 * {@code quantize} in {@code jtune.methods}. {@link Main} runs a provider when the command word is none of its
 * own: it parses the arguments against {@link #valued()} and {@link #flags()} plus the global options, picks
 * the CPU backend the global options ask for, and maps {@link Args.UsageException} to exit status 2 and other
 * runtime and I/O exceptions to 1, printing their message.
 */
public interface CommandProvider {
    /** The command word, e.g. {@code finetune}; must not be one of the engine's own commands. */
    String name();

    /**
     * The command's lines in {@code jtune --help}: the first starts with two spaces and the name, the option
     * lines are indented by four, as the engine's commands are; ends with a line break.
     */
    String help();

    /** The options that take a value ({@code --model}), besides the global ones. */
    Set<String> valued();

    /** The options that are flags ({@code --json}), besides the global ones. */
    Set<String> flags();

    /**
     * Runs the command.
     *
     * @param args    the parsed arguments; {@code positional().get(0)} is the command word
     * @param backend the backend the global options chose, on the CPU; the caller closes it
     * @param out     where results go
     * @param err     where progress and notes go
     * @return the exit status (0 ok)
     */
    int run(Args args, Backend backend, PrintStream out, PrintStream err) throws IOException;
}
