package jtune.engine.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Selection with only the engine on the class path: the scalar backend is the one provider. (The choice
 * between several providers, and passing over an unusable one, is tested in src-test, where cpu-simd is
 * present too.)
 */
class BackendsTest {
    @Test
    void providersAreFoundAndSortedBestFirst() {
        List<BackendProvider> all = Backends.providers();
        assertThat(all).extracting(BackendProvider::name).contains("scalar");
        for (int i = 1; i < all.size(); i++) {
            assertThat(all.get(i - 1).priority()).isGreaterThanOrEqualTo(all.get(i).priority());
        }
    }

    @Test
    void autoPicksTheScalarBackendWhenItIsTheOnlyOne() {
        Backends.Selection s = Backends.select(BackendOptions.DEFAULT);
        try (Backend b = s.backend()) {
            assertThat(b).isInstanceOf(ScalarBackend.class);
            assertThat(s.logLine()).isEqualTo("backend scalar, 32-bit vectors, 1 thread");
        }
    }

    @Test
    void selectByName() {
        try (Backend b = Backends.select(new BackendOptions("scalar", 3)).backend()) {
            assertThat(b.name()).isEqualTo("scalar");
            assertThat(b.describe()).isEqualTo("scalar, 32-bit vectors, 1 thread");
        }
    }

    @Test
    void unknownNameFailsListingTheValidNames() {
        assertThatThrownBy(() -> Backends.select(new BackendOptions("tpu", 0)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tpu").hasMessageContaining("auto").hasMessageContaining("scalar");
    }

    @Test
    void optionsValidateTheThreadCount() {
        assertThatThrownBy(() -> new BackendOptions("auto", -1)).isInstanceOf(IllegalArgumentException.class);
        assertThat(new BackendOptions("auto", 0).resolvedThreads()).isEqualTo(Runtime.getRuntime().availableProcessors());
        assertThat(new BackendOptions("auto", 3).resolvedThreads()).isEqualTo(3);
    }
}
