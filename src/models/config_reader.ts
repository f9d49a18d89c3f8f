// Reading config.json values the way every family needs them: each reader
// names the file and key in its Error, and a missing key takes the default
// the family's Hugging Face config class gives it.

export type Json = Record<string, unknown>;

export interface ConfigReader {
  /** A positive integer (a dimension, a count). */
  int(key: string, fallback?: number): number;
  /** A finite number >= 0 (an epsilon). */
  num(key: string, fallback: number): number;
  /** A finite number > 0 (a rotary base). */
  positive(key: string, fallback: number): number;
  bool(key: string, fallback: boolean): boolean;
  /** Token ids: absent, one id, or a list of them (eos_token_id). */
  ids(key: string): number[];
  /** 'file: 'key'' for an Error message. */
  where(key: string): string;
}

export function configReader(raw: Json, file = 'config.json'): ConfigReader {
  const where = (key: string) => `${file}: '${key}'`;
  const num = (key: string, fallback: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${where(key)} must be a non-negative number, got ${JSON.stringify(raw[key])}`);
    return v;
  };
  return {
    where,
    num,
    int(key, fallback) {
      const v = raw[key] ?? fallback;
      if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`${where(key)} must be a positive integer, got ${JSON.stringify(raw[key])}`);
      return v;
    },
    positive(key, fallback) {
      const v = num(key, fallback);
      if (!(v > 0)) throw new Error(`${where(key)} must be a positive number, got ${JSON.stringify(raw[key])}`);
      return v;
    },
    bool(key, fallback) {
      const v = raw[key] ?? fallback;
      if (typeof v !== 'boolean') throw new Error(`${where(key)} must be true or false, got ${JSON.stringify(raw[key])}`);
      return v;
    },
    ids(key) {
      const v = raw[key];
      if (v == null) return [];
      const list = Array.isArray(v) ? v : [v];
      if (!list.every((x) => Number.isInteger(x) && x >= 0)) throw new Error(`${where(key)} must be a token id or a list of them, got ${JSON.stringify(v)}`);
      return list as number[];
    },
  };
}
