/** The page's few shared DOM helpers: element lookup, the error line and the message log. */
export const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

/**
 * Errors show on one line under the buttons, where the eye is, and go at the next request that
 * succeeds. The line keeps its height when empty and cuts long text (the whole text is its
 * tooltip): an error never moves the picture.
 */
export function showError(text: string): void {
  $('error').textContent = text;
  $('error').title = text;
}

export function clearError(): void {
  showError('');
}

export function log(line: string): void {
  const box = $('messages');
  box.textContent = `${line}\n${box.textContent ?? ''}`.slice(0, 20_000);
}

/** A request from a control: its error shown, or the last error cleared when it succeeds. */
export function act<T>(what: string, request: Promise<T>, done?: (value: T) => void): Promise<void> {
  return request.then(
    (value) => {
      clearError();
      done?.(value);
    },
    (err: Error) => showError(`${what}: ${err.message}`),
  );
}

/** Enable or disable a control, saying why on hover when it is disabled. */
export function allow(el: HTMLButtonElement | HTMLInputElement | HTMLSelectElement, why: string | null, title: string): void {
  el.disabled = why !== null;
  el.title = why ?? title;
}
