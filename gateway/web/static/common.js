// Shared by the user page (app.js) and the operations page (ops.js): language, DOM and API
// helpers. No framework, no build step: plain browser JavaScript.
"use strict";

const Eco2 = (() => {
  // Korean UI; English when the browser prefers another language (or ?lang=en).
  const asked = new URLSearchParams(location.search).get("lang") || navigator.language || "ko";
  const lang = asked.toLowerCase().startsWith("ko") ? "ko" : "en";
  const texts = { ko: {}, en: {} };

  function addTexts(table) {
    for (const [key, pair] of Object.entries(table)) {
      texts.ko[key] = pair[0];
      texts.en[key] = pair[1];
    }
  }

  function t(key, vars) {
    let text = texts[lang][key] ?? texts.ko[key] ?? key;
    for (const [name, value] of Object.entries(vars || {})) {
      text = text.replaceAll(`{${name}}`, String(value));
    }
    return text;
  }

  // Fill every [data-i18n] element (and [data-i18n-placeholder] inputs) from the table.
  function translate(root = document) {
    document.documentElement.lang = lang;
    root.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    root.querySelectorAll("[data-i18n-placeholder]").forEach((node) => {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    });
  }

  // el("li", {class: "x", dataset: {a: 1}}, "text", child) — attributes, then children.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "onclick") node.addEventListener("click", value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail || `HTTP ${status}`);
      this.status = status;
    }
  }

  let onSignedOut = () => {};

  // fetch() a same-origin JSON endpoint. A 401 is answered once by refreshing the tokens
  // (as the PWA does); a second 401 means signed out.
  async function api(path, options = {}, retried = false) {
    const init = { method: options.method || "GET", credentials: "same-origin", headers: { ...(options.headers || {}) } };
    if (options.json !== undefined) {
      init.body = JSON.stringify(options.json);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    if (response.status === 401 && !retried && !options.noRefresh) {
      const refreshed = await fetch("/api/v1/auth/refresh", { method: "POST", credentials: "same-origin" });
      if (refreshed.ok) return api(path, options, true);
      onSignedOut();
    }
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
      throw new ApiError(response.status, detail);
    }
    return response.status === 204 ? null : response.json();
  }

  // What happened on the page's streams, for tests and curious developers (newest last).
  const debug = { events: [] };
  window.eco2Debug = debug;
  function record(stream, type, id, data) {
    debug.events.push({ stream, type, id, data, at: Date.now() });
    if (debug.events.length > 2000) debug.events.shift();
  }

  return {
    lang, t, addTexts, translate, el, api, ApiError, record,
    setSignedOutHandler(handler) { onSignedOut = handler; },
  };
})();
