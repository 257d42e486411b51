// `npm run build`: one CommonJS bundle per bot in dist/ (how they are built: src/tools/bundling.ts).
import { basename } from 'node:path';
import { buildBots } from '../bundling';

async function main(): Promise<void> {
  const bundles = await buildBots();
  for (const bundle of bundles) {
    console.log(`${bundle.name.padEnd(44)} ${(bundle.bytes / 1024).toFixed(1).padStart(7)} KB  dist/${bundle.name}.js`);
  }
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
