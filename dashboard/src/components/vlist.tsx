// A virtual list of fixed-height rows: only the rows in view (and a few either side) are in
// the DOM, absolutely placed in a spacer as tall as all of them, so 100,000 rows scroll like
// 30. Fixed heights keep it to arithmetic; a library for variable heights would be bigger than
// the whole console.
import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";

const OVERSCAN = 8;

export function VirtualList<T>({
  items,
  rowHeight,
  renderRow,
  focus,
  label,
  testid,
  keyOf,
}: {
  items: T[];
  /** A stable key per item, so that a row's DOM follows its item as the list moves. */
  keyOf: (item: T, index: number) => string | number;
  rowHeight: number;
  renderRow: (item: T, index: number) => ComponentChildren;
  /** A row to keep in view (keyboard navigation). */
  focus: number | null;
  label: string;
  testid: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(800);
  const frame = useRef<number | null>(null);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    setHeight(el.clientHeight);
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  useEffect(() => {
    const el = ref.current;
    if (!el || focus === null) return;
    const top = focus * rowHeight;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + rowHeight > el.scrollTop + el.clientHeight) el.scrollTop = top + rowHeight - el.clientHeight;
  }, [focus, rowHeight]);

  const onScroll = () => {
    // One re-render per frame however many scroll events arrive.
    if (frame.current !== null) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = null;
      if (ref.current) setScrollTop(ref.current.scrollTop);
    });
  };

  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((scrollTop + height) / rowHeight) + OVERSCAN);
  const shown = [];
  for (let i = first; i < last; i++) {
    shown.push(
      <div key={keyOf(items[i], i)} class="vrow" role="row" aria-rowindex={i + 1} style={{ transform: `translateY(${i * rowHeight}px)`, height: `${rowHeight}px` }}>
        {renderRow(items[i], i)}
      </div>,
    );
  }
  return (
    <div ref={ref} class="vlist" data-testid={testid} role="grid" aria-label={label} aria-rowcount={items.length} onScroll={onScroll} tabIndex={-1}>
      <div class="vspace" style={{ height: `${items.length * rowHeight}px` }}>
        {shown}
      </div>
    </div>
  );
}
