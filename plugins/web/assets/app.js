// thub web: progressive enhancement only. Every feature here also works without it, as a plain
// form post or link. No inline script exists anywhere (the Content-Security-Policy forbids it).
"use strict";

// Forms marked data-inline post with fetch and update the page in place; the server answers
// JSON when asked (Accept: application/json), and a redirect otherwise.
function enhanceInlineForms() {
  document.querySelectorAll("form[data-inline]").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      try {
        const response = await fetch(form.action, {
          method: "POST",
          body: new URLSearchParams(new FormData(form)),
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (!response.ok) throw new Error("request failed");
        const result = await response.json();
        if (form.dataset.inline === "star") updateStar(form, result);
        if (form.dataset.inline === "revoke") markRevoked(form);
      } catch (error) {
        form.submit();
      } finally {
        if (button) button.disabled = false;
      }
    });
  });
}

function updateStar(form, result) {
  const button = form.querySelector("button[type=submit]");
  const action = form.querySelector("input[name=action]");
  button.setAttribute("aria-pressed", result.starred ? "true" : "false");
  button.querySelector("[data-star-label]").textContent = result.starred ? "Unstar" : "Star";
  action.value = result.starred ? "unstar" : "star";
  document.querySelectorAll("[data-star-count]").forEach((count) => {
    count.textContent = String(result.stars_count);
  });
  const status = document.getElementById("star-status");
  if (status) status.textContent = (result.starred ? "Starred. " : "Unstarred. ") + result.stars_count + " stars.";
}

function markRevoked(form) {
  const row = form.closest("tr");
  if (row) {
    const state = row.querySelector("[data-state]");
    if (state) state.textContent = "Revoked";
  }
  form.replaceWith(document.createTextNode("Revoked"));
  const status = document.getElementById("revoke-status");
  if (status) status.textContent = "Revoked.";
}

// Buttons with data-copy copy the named element's text to the clipboard.
function enhanceCopyButtons() {
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source || !navigator.clipboard) return;
      await navigator.clipboard.writeText(source.textContent.trim());
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  });
}

// The header search suggests endpoint names as you type, from the search API.
function enhanceSearch() {
  const input = document.getElementById("site-search");
  const list = document.getElementById("search-suggestions");
  if (!input || !list) return;
  let timer = null;
  let latest = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const query = input.value.trim();
      const ticket = ++latest;
      if (query.length < 2) { list.hidden = true; return; }
      try {
        const response = await fetch("/api/v1/endpoints/search", {
          method: "POST",
          headers: { Accept: "application/json", "Content-Type": "application/json" },
          body: JSON.stringify({ query: query, top_k: 5 }),
        });
        if (!response.ok || ticket !== latest) return;
        const found = await response.json();
        const results = Array.isArray(found.results) ? found.results : [];
        list.replaceChildren(...results.map((hit) => {
          const item = document.createElement("li");
          const link = document.createElement("a");
          link.href = "/" + hit.owner_username + "/" + hit.slug;
          link.textContent = hit.name + " — " + hit.owner_username + "/" + hit.slug;
          item.append(link);
          return item;
        }));
        list.hidden = results.length === 0;
      } catch (error) {
        list.hidden = true;
      }
    }, 200);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") list.hidden = true;
  });
}

// A destructive button marked data-confirm asks first.
function enhanceConfirmations() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  enhanceInlineForms();
  enhanceCopyButtons();
  enhanceSearch();
  enhanceConfirmations();
});
