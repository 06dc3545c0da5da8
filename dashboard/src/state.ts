// A value that components follow: `set` notifies every subscriber; `useValue` re-renders a
// component when it changes. (Preact's signals would do the same; this is the twenty lines the
// console needs, without a second reactivity model beside hooks.)
import { useEffect, useState } from "preact/hooks";

export interface Cell<T> {
  get(): T;
  set(value: T): void;
  update(f: (value: T) => T): void;
  subscribe(listener: (value: T) => void): () => void;
}

export function cell<T>(initial: T): Cell<T> {
  let value = initial;
  const listeners = new Set<(value: T) => void>();
  return {
    get: () => value,
    set(next) {
      if (Object.is(next, value)) return;
      value = next;
      for (const l of [...listeners]) l(value);
    },
    update(f) {
      this.set(f(value));
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export function useValue<T>(c: Cell<T>): T {
  const [, setTick] = useState(0);
  useEffect(() => c.subscribe(() => setTick((n) => n + 1)), [c]);
  return c.get();
}
