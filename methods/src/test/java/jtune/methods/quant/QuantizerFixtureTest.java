package jtune.methods.quant;

import static jtune.methods.quant.Fixtures.cases;
import static jtune.methods.quant.Fixtures.doubles;
import static jtune.methods.quant.Fixtures.floats;
import static jtune.methods.quant.Fixtures.integer;
import static jtune.methods.quant.Fixtures.ints;
import static jtune.methods.quant.Fixtures.number;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import java.util.Map;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.QuantFormat;
import org.junit.jupiter.api.Test;

/**
 * RTN, NF4 and GPTQ against the independent NumPy/PyTorch implementation of make_quant_fixtures.py: identical codes,
 * bit-identical scales, zero points and absmax values (including the double-quantized ones), GPTQ's loss to 1e-9.
 */
class QuantizerFixtureTest {
    private final Map<String, Object> fixture = Fixtures.get();

    @Test
    void rtnMatchesTorch() {
        List<Map<String, Object>> cases = cases(fixture.get("rtn"));
        assertThat(cases).hasSize(14);
        for (Map<String, Object> c : cases) {
            int rows = integer(c, "rows"), cols = integer(c, "cols");
            QuantFormat f = QuantFormat.integer(integer(c, "bits"), integer(c, "group"), (Boolean) c.get("sym"),
                    "bf16".equals(c.get("scale_type")) ? DType.BF16 : DType.F32);
            IntQuantization q = Rtn.quantize(floats(c, "w"), rows, cols, f);
            assertCodes(q, ints(c, "codes"), f.toString());
            assertThat(q.scales()).as("scales, %s", f).containsExactly(floats(c, "scales"));
            assertThat(q.zeros()).as("zeros, %s", f).containsExactly(floats(c, "zeros"));
        }
    }

    @Test
    void nf4MatchesTheBitsandbytesDefinition() {
        List<Map<String, Object>> cases = cases(fixture.get("nf4"));
        assertThat(cases).hasSize(3);
        for (Map<String, Object> c : cases) {
            int rows = integer(c, "rows"), cols = integer(c, "cols");
            boolean dq = (Boolean) c.get("double_quant");
            QuantFormat f = QuantFormat.nf4(integer(c, "block"), dq);
            Nf4Quantization q = Nf4Quantizer.quantize(floats(c, "w"), rows, cols, f);
            assertCodes(q, ints(c, "codes"), f.toString());
            assertThat(q.absmax()).as("absmax, %s", f).containsExactly(floats(c, "absmax"));
            if (dq) {
                int[] expected = ints(c, "absmax_codes");
                for (int n = 0; n < expected.length; n++) {
                    assertThat(q.absmaxCodes()[n] & 0xff).as("absmax code %d", n).isEqualTo(expected[n]);
                }
                assertThat(q.absmaxScales()).containsExactly(floats(c, "absmax_scales"));
                assertThat(q.absmaxOffset()).isEqualTo((float) number(c, "absmax_offset"));
            }
        }
    }

    @Test
    void nf4WorkedExampleAndMidpointTies() {
        Map<String, Object> c = cases(fixture.get("nf4")).getFirst();
        Nf4Quantization q = Nf4Quantizer.quantize(floats(c, "w"), 6, 128, QuantFormat.nf4(64, false));
        int[] first = {q.code(0, 0), q.code(0, 1), q.code(0, 2), q.code(0, 3)};
        int[] second = {q.code(0, 64), q.code(0, 65), q.code(0, 66), q.code(0, 67)};
        assertThat(first).containsExactly(12, 5, 15, 7);
        assertThat(second).containsExactly(12, 5, 7, 0);
        for (int k = 0; k < 15; k++) {
            assertThat(q.code(1, 1 + k)).as("positive midpoint %d takes the lower code", k).isEqualTo(k);
            assertThat(q.code(1, 31 + k)).as("just above midpoint %d", k).isEqualTo(k + 1);
        }
    }

    @Test
    void gptqMatchesTheUnbatchedReference() {
        Map<String, Object> g = Fixtures.object(fixture, "gptq");
        double[] h = doubles(g, "h");
        List<Map<String, Object>> cases = cases(g.get("cases"));
        assertThat(cases).hasSize(9);
        for (Map<String, Object> c : cases) {
            int rows = integer(c, "rows"), cols = integer(c, "cols");
            QuantFormat f = QuantFormat.integer(integer(c, "bits"), integer(c, "group"), (Boolean) c.get("sym"),
                    "bf16".equals(c.get("scale_type")) ? DType.BF16 : DType.F32);
            Gptq.Options o = new Gptq.Options(f, (Boolean) c.get("act_order"), number(c, "percdamp"),
                    integer(c, "block"));
            Gptq.Result r = Gptq.quantize(floats(c, "w"), rows, cols, h, o);
            String what = f + (o.actOrder() ? " act-order" : "") + " block " + o.blockSize();
            assertCodes(r.quantization(), ints(c, "codes"), what);
            assertThat(r.quantization().scales()).as("scales, %s", what).containsExactly(floats(c, "scales"));
            assertThat(r.quantization().zeros()).as("zeros, %s", what).containsExactly(floats(c, "zeros"));
            assertThat(r.loss()).as("loss, %s", what).isCloseTo(number(c, "loss"), within(1e-9 * number(c, "loss")));
            assertThat(r.percdamp()).isEqualTo(o.percdamp());
        }
    }

    private static void assertCodes(QuantizedArrays q, int[] expected, String what) {
        int mismatches = 0;
        String first = null;
        for (int i = 0; i < q.rows(); i++) {
            for (int j = 0; j < q.cols(); j++) {
                if (q.code(i, j) != expected[i * q.cols() + j]) {
                    mismatches++;
                    if (first == null) {
                        first = "(" + i + ", " + j + "): " + q.code(i, j) + " vs " + expected[i * q.cols() + j];
                    }
                }
            }
        }
        assertThat(mismatches).as("codes differing for %s, first at %s", what, first).isZero();
    }
}
