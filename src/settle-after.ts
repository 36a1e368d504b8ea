/**
 * A function that calls `settle` once it has been called `count` times: for a
 * message or record that is done when all of its parts are. `count` 0 settles
 * at once.
 */
export function settleAfter(count: number, settle: () => void): () => void {
  let left = count;
  if (left === 0) settle();
  return () => {
    left--;
    if (left === 0) settle();
  };
}
