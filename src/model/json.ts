/** A JSON value: what a model's commands, options and messages carry. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
