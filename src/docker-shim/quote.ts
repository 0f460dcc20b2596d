/**
 * Shell quoting for display only (`gpuguard explain`): argv is always built
 * and passed as an array, never as a string. `shellWords` reads the test
 * corpus and `explain`'s quoted input back into argv.
 */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One word, quoted so that POSIX sh reads it back unchanged. */
export function shellQuote(word: string): string {
  if (word !== '' && SAFE.test(word)) return word;
  if (/[\n\t\r]/.test(word)) {
    const esc = word.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\t/g, '\\t').replace(/\r/g, '\\r');
    return `$'${esc}'`;
  }
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** Split a command line the way sh does for quoting (no expansion): '…', "…", $'…', backslash. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur: string | undefined;
  let i = 0;
  const add = (s: string) => (cur = (cur ?? '') + s);
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${line}`);
      add(line.slice(i + 1, end));
      i = end + 1;
    } else if (c === '$' && line[i + 1] === "'") {
      i += 2;
      let s = '';
      while (i < line.length && line[i] !== "'") {
        if (line[i] === '\\') {
          const n = line[i + 1]!;
          s += ({ n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"' } as Record<string, string>)[n] ?? `\\${n}`;
          i += 2;
        } else s += line[i++];
      }
      if (i >= line.length) throw new Error(`unterminated $' in: ${line}`);
      add(s);
      i++;
    } else if (c === '"') {
      i++;
      let s = '';
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && '"\\$`'.includes(line[i + 1] ?? '')) {
          s += line[i + 1];
          i += 2;
        } else s += line[i++];
      }
      if (i >= line.length) throw new Error(`unterminated " in: ${line}`);
      add(s);
      i++;
    } else if (c === '\\') {
      add(line[i + 1] ?? '');
      i += 2;
    } else {
      add(c);
      i++;
    }
  }
  if (cur !== undefined) words.push(cur);
  return words;
}
