/**
 * What test/structure.test.ts measures in src/, read with the TypeScript compiler API: each
 * function's length in lines, the state it keeps in closures, and each module's imports.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';

/** Every TypeScript module under `dir` (declaration files aside), as paths relative to `root`. */
export function sourceFiles(root: string, dir: string): string[] {
  const found: string[] = [];
  const walk = (at: string): void => {
    for (const name of readdirSync(at).sort()) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|mts|cts)$/.test(name) && !name.endsWith('.d.ts')) found.push(relative(root, path));
    }
  };
  walk(join(root, dir));
  return found;
}

const parse = (root: string, file: string): ts.SourceFile => ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.Latest, true);

/** A function's own name, or the name it is bound to (`const f = () => …`, `{ f: () => … }`). */
function ownName(node: ts.SignatureDeclaration): string {
  if (node.name) return node.name.getText();
  const parent = node.parent;
  if ((ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) && parent.name) return parent.name.getText();
  // A callback is named by the call it is passed to, and that call's first literal argument if
  // any: `io.on('connection', …)` gives `on('connection')`, `fromCallback(…)` gives `fromCallback()`.
  if (ts.isCallExpression(parent)) {
    const callee = ts.isPropertyAccessExpression(parent.expression) ? parent.expression.name.getText() : parent.expression.getText();
    const [first] = parent.arguments;
    return `${callee}(${first && ts.isStringLiteral(first) ? `'${first.text}'` : ''})`;
  }
  return '<anon>';
}

export interface FunctionLength {
  /** `file: outer/inner`, the names of the enclosing functions down to this one. */
  readonly key: string;
  /** First to last line, both counted. */
  readonly lines: number;
}

/** Every function with a body in `file`, with its length. */
export function functionLengths(root: string, file: string): FunctionLength[] {
  const source = parse(root, file);
  const found: FunctionLength[] = [];
  const seen = new Map<string, number>();
  const visit = (node: ts.Node, outer: string): void => {
    let path = outer;
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      path = outer ? `${outer}/${ownName(node)}` : ownName(node);
      const first = source.getLineAndCharacterOfPosition(node.getStart()).line;
      const last = source.getLineAndCharacterOfPosition(node.end).line;
      // Two anonymous functions in one place get #2, #3… so that every key is one function.
      const n = (seen.get(path) ?? 0) + 1;
      seen.set(path, n);
      found.push({ key: `${file}: ${n > 1 ? `${path}#${n}` : path}`, lines: last - first + 1 });
    }
    ts.forEachChild(node, (child) => visit(child, path));
  };
  visit(source, '');
  return found;
}

const isAssignment = (kind: ts.SyntaxKind): boolean => kind >= ts.SyntaxKind.FirstAssignment && kind <= ts.SyntaxKind.LastAssignment;

/** The `let` variable a node writes (`x = …`, `x += …`, `x++`), if any. */
function written(node: ts.Node): string | undefined {
  if (ts.isBinaryExpression(node) && isAssignment(node.operatorToken.kind) && ts.isIdentifier(node.left)) return node.left.text;
  if ((ts.isPrefixUnaryExpression(node) || ts.isPostfixUnaryExpression(node)) && ts.isIdentifier(node.operand)) {
    if (node.operator === ts.SyntaxKind.PlusPlusToken || node.operator === ts.SyntaxKind.MinusMinusToken) return node.operand.text;
  }
  return undefined;
}

/**
 * State kept in a closure: each `let` of a function that a function nested in it assigns
 * (`file: outer/fn: name`). Such a variable outlives the statement that set it, and is shared by
 * every callback that closes over it: the state a named class (or a chart) should hold.
 */
export function closureState(root: string, file: string): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node, outer: string): void => {
    let path = outer;
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      path = outer ? `${outer}/${ownName(node)}` : ownName(node);
      const lets = new Set<string>();
      const collect = (n: ts.Node): void => {
        if (n !== node && ts.isFunctionLike(n)) return;
        if (ts.isVariableDeclarationList(n) && n.flags & ts.NodeFlags.Let) for (const d of n.declarations) if (ts.isIdentifier(d.name)) lets.add(d.name.text);
        ts.forEachChild(n, collect);
      };
      ts.forEachChild(node, collect);
      const shared = new Set<string>();
      const inner = (n: ts.Node, nested: boolean): void => {
        const name = nested ? written(n) : undefined;
        if (name && lets.has(name)) shared.add(name);
        ts.forEachChild(n, (c) => inner(c, nested || ts.isFunctionLike(c)));
      };
      ts.forEachChild(node, (c) => inner(c, ts.isFunctionLike(c)));
      for (const name of [...shared].sort()) found.push(`${file}: ${path}: ${name}`);
    }
    ts.forEachChild(node, (child) => visit(child, path));
  };
  visit(parse(root, file), '');
  return found;
}

/**
 * The modules of src/ that `file` imports: `import`, `import type`, `export … from` and
 * `import('…')` with a literal path. Type-only imports count: they tie the two modules'
 * meanings together just as much, and a circle of types is a circle a reader has to walk.
 */
export function importsOf(root: string, file: string): string[] {
  const source = parse(root, file);
  const found = new Set<string>();
  const add = (specifier: string): void => {
    if (specifier.startsWith('.')) found.add(join(dirname(file), specifier));
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) add(node.moduleSpecifier.text);
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [first] = node.arguments;
      if (first && ts.isStringLiteral(first)) add(first.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return [...found];
}

/** The import circles of a graph: its strongly connected components of more than one module, or one that imports itself (Tarjan). */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        connect(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(component.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) connect(node);
  return found;
}
