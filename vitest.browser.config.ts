import { defineConfig } from 'vitest/config';

// `npm run test:browser`: the tests that need a browser (Debian's Chromium), kept out of `npm test`
// so that a newcomer's `npm test` needs nothing but npm; `.ci/run` runs both.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.browser.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: process.env.CI ? { json: '.ci/browser-results.json' } : undefined,
  },
});
