/*
 * The status API (uploads.api) as the widget uses it: list the user's uploads,
 * read one, cancel one. Same-origin, with the session cookie and CSRF header.
 */

// Django's documented ways, in order: the {% csrf_token %} input (works with
// CSRF_COOKIE_HTTPONLY), then the csrftoken cookie.
export function csrfToken(element) {
  const form = element && element.closest("form");
  const input = (form && form.querySelector("[name=csrfmiddlewaretoken]")) ||
    document.querySelector("[name=csrfmiddlewaretoken]");
  if (input) return input.value;
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export class StatusApi {
  constructor(url, token) {
    this.url = url; // the list's URL, ending in "/"
    this.token = token;
  }

  async request(method, path = "") {
    const response = await fetch(this.url + path, {
      method,
      credentials: "same-origin",
      headers: {"X-CSRFToken": this.token, "Accept": "application/json"},
    });
    if (!response.ok) {
      // The server's sentence when it gave one (a 409 says which document uses a file).
      const data = await response.json().catch(() => ({}));
      throw new Error(data.error || `${method} ${this.url + path}: status ${response.status}`);
    }
    return response;
  }

  // The newest page of the user's uploads.
  async list() {
    const data = await (await this.request("GET")).json();
    return data.results || [];
  }

  async get(id) {
    return (await this.request("GET", id + "/")).json();
  }

  cancel(id) {
    return this.request("DELETE", id + "/");
  }
}
