// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.node-runtime/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // The layout shows what ships: src/runtime/ and bots/ are bundled into the bots that run in a
    // customer's Medplum; src/tools/ (emulator, CLIs, provisioning, monitor, bench) never is.
    // Shipped code imports neither the tools nor the tests; the tools do not import the tests.
    files: ['src/runtime/**/*.ts', 'bots/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/tools/**', '**/test/**'], message: 'Code bundled into bots must not import tools or tests.' },
          ],
        },
      ],
    },
  },
  {
    // The I/O layer depends on nothing above it: its read and write shapes are store/contract.ts.
    files: ['src/runtime/store/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/tools/**', '**/test/**'], message: 'Code bundled into bots must not import tools or tests.' },
            { group: ['../handlers/*', '../webhook-bot'], message: 'The store depends on no handler: use ./contract.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/tools/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/test/**'], message: 'Tools must not import tests: move shared code into src/tools/.' },
          ],
        },
      ],
    },
  },
  {
    // Bot code runs in Medplum's vmcontext sandbox, which has no Buffer, crypto or timer globals.
    files: ['src/runtime/**/*.ts', 'bots/**/*.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'Buffer', message: "Import Buffer from 'node:buffer': vmcontext has no Buffer global." },
        { name: 'crypto', message: "Import from 'node:crypto': vmcontext has no crypto global." },
        { name: 'setTimeout', message: "Use 'node:timers/promises': vmcontext has no timer globals." },
        { name: 'setInterval', message: "Use 'node:timers/promises': vmcontext has no timer globals." },
        {
          name: 'AbortSignal',
          message: 'vmcontext has no AbortSignal global: race the request against node:timers/promises.',
        },
        { name: 'AbortController', message: 'vmcontext has no AbortController global.' },
        { name: 'structuredClone', message: 'vmcontext has no structuredClone global.' },
        { name: 'Headers', message: "A 5.1.x server's vmcontext has no Headers global (ledger WH-4)." },
        { name: 'Request', message: "A 5.1.x server's vmcontext has no Request global (ledger WH-4)." },
        { name: 'Response', message: "A 5.1.x server's vmcontext has no Response global (ledger WH-4)." },
        { name: 'atob', message: 'vmcontext has no atob global.' },
        { name: 'btoa', message: 'vmcontext has no btoa global.' },
      ],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  }
);
