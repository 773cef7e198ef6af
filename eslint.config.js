// Lint: typescript-eslint's type-checked rules (a forgotten await in storage or replication
// code is a data-loss bug) plus the architecture rules of DESIGN.md as restrictions.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Core logic reaches time, randomness and I/O only through ports (Clock, Rng, Disk, KV,
// Transport), so a simulator seed replays exactly. Adapters that implement a port for real
// live in files named node-*.ts and are exempt.
const ioModules = ['fs', 'fs/promises', 'net', 'http', 'http2', 'dgram', 'child_process', 'undici', 'timers', 'timers/promises'];
// Logging and metrics go through the Log and DurationSink ports (storage/observe.ts) too.
const observationModules = ['pino', 'prom-client'];
const restrictedIo = [...ioModules.flatMap((name) => [name, `node:${name}`]), ...observationModules].map((name) => ({
  name,
  message: 'Core code reaches the world only through ports (DESIGN.md, Ports).',
}));
const restrictedGlobals = [
  { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'Use the Clock port.' },
  { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Use the Clock port.' },
  { selector: "CallExpression[callee.object.name='performance'][callee.property.name='now']", message: 'Use the Clock port.' },
  { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'Use the Rng port.' },
  { selector: "CallExpression[callee.name=/^(setTimeout|setInterval|setImmediate)$/]", message: 'Use the Clock port.' },
  { selector: "MemberExpression[object.name='process'][property.name='hrtime']", message: 'Use the Clock port.' },
];
const coreFiles = ['raft/**/*.ts', 'storage/**/*.ts', 'src/quorum/**/*.ts', 'src/controller/**/*.ts', 'src/broker/**/*.ts', 'src/replica/**/*.ts', 'src/group/**/*.ts'];
const adapterFiles = ['**/node-*.ts'];
// Later blocks override earlier ones for the same rule: general first, strictest last.

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    files: ['src/**/*.ts', 'storage/**/*.ts', 'raft/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [], patterns: [{ group: ['**/sim/**', '../sim/*', '../../sim/*'], message: 'Nothing outside sim/ imports sim/.' }] }],
    },
  },
  {
    files: coreFiles,
    ignores: adapterFiles,
    rules: {
      'no-restricted-imports': ['error', { paths: restrictedIo, patterns: [{ group: ['**/sim/**', '../sim/*', '../../sim/*'], message: 'Nothing outside sim/ imports sim/.' }] }],
      'no-restricted-syntax': ['error', ...restrictedGlobals],
    },
  },
  {
    files: ['raft/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: restrictedIo, patterns: [{ group: ['**/src/**', '**/storage/**', '**/sim/**'], message: 'raft/ imports nothing of the others.' }] }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
