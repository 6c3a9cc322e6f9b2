/**
 * `framehost init DIR`: a model project a new author can run at once: package.json (framehost
 * and onnxruntime-node, with onnxruntime-node's CUDA download skipped; `npm run check` type-checks
 * the model with tsc before `framehost check` runs it), tsconfig.json, model.ts (a typed command,
 * an input-free loop paced by deadline), model.onnx (the starter graph, src/models/waves/graph.ts), a
 * README of ten lines, .npmrc and .gitignore. The files are in templates/model/ of the package.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWavesGraph } from '../models/waves/graph.ts';
import { stringOption, UsageError, type ParsedCommandLine } from './args.ts';
import { RunError } from './problems.ts';

// src/cli/init.ts and dist/cli/init.js both sit two folders below the package root.
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TEMPLATE = join(PACKAGE_ROOT, 'templates', 'model');

/** An npm package name from a folder's name: lowercase, URL-safe. */
function packageName(raw: string): string {
  const name = raw.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+|[-]+$/g, '');
  return name.length > 0 ? name.slice(0, 214) : 'my-model';
}

interface OwnPackage {
  readonly version: string;
  readonly dependencies: Readonly<Record<string, string>>;
  readonly devDependencies: Readonly<Record<string, string>>;
}

export async function runInit(cli: ParsedCommandLine): Promise<number> {
  const dir = cli.positional;
  if (!dir) throw new UsageError('which folder? framehost init my-model');
  const target = resolve(dir);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new UsageError(`${dir} exists and is not a folder`);
    if (readdirSync(target).length > 0 && cli.values.force !== true) throw new UsageError(`${dir} is not empty: choose a new folder, or --force to write into it`);
  }
  const name = packageName(stringOption(cli.values, 'name') ?? basename(target));
  const own = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as OwnPackage;
  // --framehost: a version range (the default), or a tarball or folder (written relative to the project).
  const spec = stringOption(cli.values, 'framehost') ?? `^${own.version}`;
  const framehost = existsSync(resolve(spec)) ? `file:${relative(target, resolve(spec)) || '.'}` : spec;
  const manifest = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: {
      // exec: npm's SIGTERM then reaches the server itself (a plain script would orphan it).
      start: 'exec framehost serve --model ./model.ts',
      // tsc first: framehost check runs the model without reading its types (a wrong type in a
      // handler would pass all its steps).
      check: 'tsc && exec framehost check ./model.ts',
    },
    dependencies: { framehost, 'onnxruntime-node': own.dependencies['onnxruntime-node'] ?? '*' },
    devDependencies: { typescript: own.devDependencies.typescript ?? '*', '@types/node': own.devDependencies['@types/node'] ?? '*' },
    // npm 11: never run onnxruntime-node's install script (it downloads CUDA libraries from outside the registry).
    allowScripts: { 'onnxruntime-node': false },
  };
  const files: Record<string, string | Uint8Array> = {
    'package.json': `${JSON.stringify(manifest, null, 2)}\n`,
    // A package name has no quote in it: safe inside the single quotes.
    'model.ts': readFileSync(join(TEMPLATE, 'model.ts'), 'utf8').replace("name: 'my-world'", `name: '${name}'`),
    'model.onnx': buildWavesGraph(),
    'tsconfig.json': readFileSync(join(TEMPLATE, 'tsconfig.json'), 'utf8'),
    'README.md': readFileSync(join(TEMPLATE, 'README.md'), 'utf8').replace('# my-world', `# ${name}`),
    '.npmrc': readFileSync(join(TEMPLATE, 'npmrc'), 'utf8'),
    '.gitignore': readFileSync(join(TEMPLATE, 'gitignore'), 'utf8'),
  };
  try {
    mkdirSync(target, { recursive: true });
    for (const [file, content] of Object.entries(files)) writeFileSync(join(target, file), content);
  } catch (err) {
    throw new RunError('write_failed', `cannot write ${dir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const shown = relative(process.cwd(), target) || '.';
  process.stdout.write(
    [
      `created ${shown}: ${Object.keys(files).join(', ')}`,
      '',
      `  cd ${shown}`,
      '  npm install',
      '  npm run check                            # tsc, then framehost check ./model.ts',
      '  npx framehost serve --model ./model.ts   # then open http://127.0.0.1:3000',
      '',
    ].join('\n'),
  );
  // From a checkout, the default range names a package the registry does not have yet: say so
  // now rather than let `npm install` fail with E404 later.
  if (stringOption(cli.values, 'framehost') === undefined && !PACKAGE_ROOT.split(/[\\/]/).includes('node_modules')) {
    process.stderr.write(
      `framehost: note: framehost ${own.version} is not on the npm registry yet, so \`npm install\` there will fail (E404).\n` +
        `  Run \`npm pack\` in ${resolve(PACKAGE_ROOT)} and init again with --framehost ${join(PACKAGE_ROOT, `framehost-${own.version}.tgz`)} --force\n`,
    );
  }
  return 0;
}
