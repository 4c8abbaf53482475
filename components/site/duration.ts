/** Seconds in a Go-style duration as Talos and talosctl spell them (`90s`, `2m`, `1h30m`). */
export function durationSeconds(d: string): number {
  const re = /(\d+)(h|m|s)/g;
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(d)) !== null) {
    total += Number(m[1]) * (m[2] === "h" ? 3600 : m[2] === "m" ? 60 : 1);
    consumed += m[0].length;
  }
  if (consumed !== d.length || consumed === 0) throw new Error(`not a duration: ${d}`);
  return total;
}
