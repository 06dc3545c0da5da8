// The console's filter bar: the matcher language typed in one line, applied on Enter or when
// typing pauses, its mistake named under it, and completions as you type (names, then the
// values the open alerts hold, with their counts) — an ARIA combobox: ↓/↑ pick, Tab or Enter
// takes the picked one, Esc closes the list. Enter without a pick applies the filter as typed.
import type { RefObject } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { type Completions, accept, complete } from "../suggest";

/** How long typing must pause before the filter applies by itself. */
const APPLY_AFTER_MS = 600;

export function FilterBar({
  q,
  error,
  inputRef,
  onApply,
  onHelp,
  fieldNames,
  valuesOf,
}: {
  q: string;
  error: string | null;
  inputRef: RefObject<HTMLInputElement>;
  onApply: (text: string) => void;
  onHelp: () => void;
  fieldNames: () => string[];
  valuesOf: (name: string) => { value: string; count?: number }[];
}) {
  const [text, setText] = useState(q);
  const [list, setList] = useState<Completions | null>(null);
  const [active, setActive] = useState(-1);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => setText(q), [q]);
  useEffect(() => () => void (timer.current && clearTimeout(timer.current)), []);

  /** Applies `value`; `close` also closes the completions (Enter does; a pause does not). */
  const applyNow = (value: string, close = true) => {
    if (timer.current) clearTimeout(timer.current);
    if (close) setList(null);
    if (value !== q) onApply(value);
  };
  const later = (value: string) => {
    if (timer.current) clearTimeout(timer.current);
    // Applied when typing pauses; errors show then, not at every keystroke. A term that ends
    // in its operator is still being written (its values are on offer): not yet.
    if (/[=~<>]$/.test(value)) return;
    timer.current = setTimeout(() => applyNow(value, false), APPLY_AFTER_MS);
  };
  const suggest = (value: string, caret: number) => {
    const c = complete(value, caret, fieldNames(), valuesOf);
    setList(c.items.length > 0 ? c : null);
    setActive(-1);
  };
  const take = (index: number) => {
    const input = inputRef.current;
    if (!list || !input) return;
    const { text: next, caret } = accept(text, list, list.items[index]);
    setText(next);
    input.value = next;
    input.setSelectionRange(caret, caret);
    input.focus();
    // A name completion goes on to its values; a value completion is a whole term.
    if (next[caret - 1] !== " ") suggest(next, caret);
    else setList(null);
    later(next);
  };
  const open = list !== null;
  return (
    <div class="filterbar">
      <label class="sr-only" for="filter">
        Filter alerts
      </label>
      <div class="filter-combo">
        <input
          id="filter"
          ref={inputRef}
          data-testid="filter-input"
          class={error ? "invalid" : ""}
          type="search"
          role="combobox"
          aria-autocomplete="list"
          aria-expanded={open}
          aria-controls="filter-completions"
          aria-activedescendant={open && active >= 0 ? `filter-completion-${active}` : undefined}
          spellcheck={false}
          autocomplete="off"
          placeholder='Filter: severity=critical device=~"10.20.*" addon!=prtg "link down"   (press / to focus)'
          aria-invalid={error !== null}
          aria-describedby={error ? "filter-error" : undefined}
          value={text}
          onInput={(e) => {
            const input = e.target as HTMLInputElement;
            setText(input.value);
            suggest(input.value, input.selectionStart ?? input.value.length);
            later(input.value);
          }}
          onBlur={() => setList(null)}
          onKeyDown={(e) => {
            if (open && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
              e.preventDefault();
              const n = list.items.length;
              setActive((a) => (e.key === "ArrowDown" ? (a + 1) % n : a <= 0 ? n - 1 : a - 1));
            } else if (open && active >= 0 && (e.key === "Enter" || e.key === "Tab")) {
              e.preventDefault();
              take(active);
            } else if (open && e.key === "Escape") {
              // Closes the list only; a second Escape leaves the field.
              e.preventDefault();
              e.stopPropagation();
              setList(null);
            } else if (e.key === "Enter") {
              applyNow(text);
            }
          }}
        />
        {open ? (
          <ul class="completions" id="filter-completions" role="listbox" aria-label="Completions">
            {list.items.map((item, i) => (
              <li
                key={item.text}
                id={`filter-completion-${i}`}
                role="option"
                aria-selected={i === active}
                class={i === active ? "active" : ""}
                // Before the input's blur, so that the click lands.
                onMouseDown={(e) => {
                  e.preventDefault();
                  take(i);
                }}
              >
                <span class="mono">{item.label}</span>
                {item.hint ? <span class="muted">{item.hint}</span> : null}
              </li>
            ))}
          </ul>
        ) : null}
      </div>
      <button type="button" class="icon" aria-label="Filter syntax and keys" title="Filter syntax and keys (?)" onClick={onHelp}>
        ?
      </button>
      {error ? (
        <p id="filter-error" class="error filter-error" role="alert" data-testid="filter-error">
          {error}
        </p>
      ) : null}
    </div>
  );
}
