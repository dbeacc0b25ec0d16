package jtune.engine.cli;

import java.awt.Graphics2D;

/**
 * A 5×7 pixel font (upper case, digits, a little punctuation) drawn as filled squares, so that charts need no
 * system font: a JDK without fontconfig or installed fonts draws them the same. Lower case is drawn as upper
 * case; a character the font lacks is drawn as '?'.
 */
final class PixelFont {
    private static final String CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:,()/=+%?_ ";
    /** Seven rows of five bits each, top row in the highest byte, leftmost pixel in bit 4. */
    private static final long[] GLYPHS = {
            0x0E11131519110EL, 0x040C040404040EL, 0x0E11010204081FL, 0x1F02040201110EL, 0x02060A121F0202L,
            0x1F101E0101110EL, 0x0608101E11110EL, 0x1F010204080808L, 0x0E11110E11110EL, 0x0E11110F01020CL,
            0x0E1111111F1111L, 0x1E11111E11111EL, 0x0E11101010110EL, 0x1C12111111121CL, 0x1F10101E10101FL,
            0x1F10101E101010L, 0x0E11101711110FL, 0x1111111F111111L, 0x0E04040404040EL, 0x0702020202120CL,
            0x11121418141211L, 0x1010101010101FL, 0x111B1515111111L, 0x11111915131111L, 0x0E11111111110EL,
            0x1E11111E101010L, 0x0E11111115120DL, 0x1E11111E141211L, 0x0F10100E01011EL, 0x1F040404040404L,
            0x1111111111110EL, 0x11111111110A04L, 0x1111111515150AL, 0x11110A040A1111L, 0x1111110A040404L,
            0x1F01020408101FL, 0x00000000000C0CL, 0x0000001F000000L, 0x000C0C000C0C00L, 0x00000000000C04L,
            0x02040808080402L, 0x08040202020408L, 0x00010204081000L, 0x00001F001F0000L, 0x0004041F040400L,
            0x18190204081303L, 0x0E110102040004L, 0x0000000000001FL, 0x00000000000000L};
    static final int WIDTH = 5;
    static final int HEIGHT = 7;

    private PixelFont() {
    }

    /** Width in pixels of {@code text} at {@code scale} (one blank column between characters). */
    static int width(String text, int scale) {
        return text.isEmpty() ? 0 : (text.length() * (WIDTH + 1) - 1) * scale;
    }

    /** Draws {@code text} with its top-left corner at (x, y), each font pixel a {@code scale}² square. */
    static void draw(Graphics2D g, String text, int x, int y, int scale) {
        for (int i = 0; i < text.length(); i++) {
            int c = CHARS.indexOf(Character.toUpperCase(text.charAt(i)));
            long glyph = GLYPHS[c < 0 ? CHARS.indexOf('?') : c];
            int left = x + i * (WIDTH + 1) * scale;
            for (int row = 0; row < HEIGHT; row++) {
                int bits = (int) (glyph >>> (8 * (HEIGHT - 1 - row))) & 0x1F;
                for (int col = 0; col < WIDTH; col++) {
                    if ((bits >>> (WIDTH - 1 - col) & 1) != 0) {
                        g.fillRect(left + col * scale, y + row * scale, scale, scale);
                    }
                }
            }
        }
    }
}
