package jtune.methods.quant;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import jtune.engine.io.Json;

/** Reads quant-fixtures.json, written by methods/src/test/python/make_quant_fixtures.py. */
final class Fixtures {
    private static Map<String, Object> fixture;

    private Fixtures() {
    }

    static synchronized Map<String, Object> get() {
        if (fixture == null) {
            try (InputStream in = Fixtures.class.getResourceAsStream("/fixtures/quant-fixtures.json")) {
                if (in == null) {
                    throw new IllegalStateException("fixtures/quant-fixtures.json is missing; run "
                            + "methods/src/test/python/make_quant_fixtures.py");
                }
                fixture = Json.parseObject(new String(in.readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return fixture;
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> cases(Object v) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Object o : (List<Object>) v) {
            out.add((Map<String, Object>) o);
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> object(Map<String, Object> c, String key) {
        return (Map<String, Object>) c.get(key);
    }

    static int integer(Map<String, Object> c, String key) {
        return ((Number) c.get(key)).intValue();
    }

    static double number(Map<String, Object> c, String key) {
        return ((Number) c.get(key)).doubleValue();
    }

    @SuppressWarnings("unchecked")
    static double[] doubles(Map<String, Object> c, String key) {
        List<Object> l = (List<Object>) c.get(key);
        double[] out = new double[l.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((Number) l.get(i)).doubleValue();
        }
        return out;
    }

    static float[] floats(Map<String, Object> c, String key) {
        double[] d = doubles(c, key);
        float[] out = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            out[i] = (float) d[i];
        }
        return out;
    }

    static int[] ints(Map<String, Object> c, String key) {
        double[] d = doubles(c, key);
        int[] out = new int[d.length];
        for (int i = 0; i < d.length; i++) {
            out[i] = (int) d[i];
        }
        return out;
    }
}
