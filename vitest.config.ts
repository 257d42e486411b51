import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'bots/**/*.test.ts', 'test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 30_000,
    // One module graph per worker, not per file: the FHIR definitions (test/setup.ts) and the
    // emulator's modules load once per worker instead of once per test file (measured: the whole
    // suite 166 s isolated → 106 s). Suites keep their state in their own closures and servers.
    isolate: false,
    // More workers than the 2 cores: much of the suite waits (loopback servers, child processes,
    // MedplumClient's retry backoff, bounded timeouts), and waits overlap. Measured on the 2-core
    // machine, whole suite: 2 workers (the default) 98 s, 4 workers 66 s, 6 workers 62 s.
    maxWorkers: 4,
    hookTimeout: 60_000,
    // Under CI, also write a JSON report: .ci/run prints its plain "N passed, N failed" line.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: process.env.CI ? { json: '.ci/test-results.json' } : undefined,
  },
});
