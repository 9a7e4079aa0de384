/*
 * Every word the widget shows goes through t(), so that a translation can be
 * added later without touching the code that shows it: with Django's
 * JavaScriptCatalog on the page (window.gettext, window.interpolate) the text
 * is translated, without it it is shown as written.
 *
 *   t("Paused.")
 *   t("Reconnecting… (retry in %(seconds)s s)", {seconds: 12})
 *
 * `makemessages -d djangojs` collects the texts written as t("…") (the
 * project's makemessages adds the keyword) and as gettext_noop("…").
 */

export function t(text, values) {
  const translated = typeof window.gettext === "function" ? window.gettext(text) : text;
  if (!values) return translated;
  if (typeof window.interpolate === "function") return window.interpolate(translated, values, true);
  return translated.replace(/%\((\w+)\)s/g, (match, name) => String(values[name]));
}

// Marks a text kept in a table for makemessages; t() translates it where it is shown.
export function gettext_noop(text) {
  return text;
}
