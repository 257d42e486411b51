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
    // Bot code runs in Medplum's vmcontext sandbox, which has no Buffer, crypto or timer globals.
    files: ['src/**/*.ts', 'bots/**/*.ts'],
    ignores: ['src/emulator/**', 'src/cli/**'],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'Buffer', message: "Import Buffer from 'node:buffer': vmcontext has no Buffer global." },
        { name: 'crypto', message: "Import from 'node:crypto': vmcontext has no crypto global." },
        { name: 'setTimeout', message: "Use 'node:timers/promises': vmcontext has no timer globals." },
        { name: 'setInterval', message: "Use 'node:timers/promises': vmcontext has no timer globals." },
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
