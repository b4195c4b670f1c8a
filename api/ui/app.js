// The single-page app: hash routes, the header, and the login screen.
//   #/runs?namespace=&job=&state=&after=&before=     #/lineage?node=&direction=&depth=&as_of=&as_of_run=
//   #/issues?status=&kind=&...                        #/dataset/<ns>/<name>?tab=
//   #/run/<id>?tab=info|duration|compare&other=       #/search?q=        #/login
import { auth, checkKey, explain, onUnauthorized, probeAuth } from "./api.js";
import { renderLineage } from "./lineage.js";
import { renderDataset, renderIssues, renderRuns, renderSearch } from "./pages.js";
import { renderRun } from "./run.js";
import { clear, h, message, put } from "./util.js";

const app = document.getElementById("app");
let wanted = ""; // the page to open after logging in
let loginNote = "";

const ROUTES = {
  runs: renderRuns,
  lineage: renderLineage,
  issues: renderIssues,
  search: renderSearch,
  dataset: renderDataset,
  run: renderRun,
};

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [pathPart, queryPart] = splitOnce(raw, "?");
  const segments = pathPart.split("/").filter((p) => p !== "").map((p) => decodeURIComponent(p));
  return { segments, params: new URLSearchParams(queryPart || "") };
}

function splitOnce(text, sep) {
  const i = text.indexOf(sep);
  return i < 0 ? [text, ""] : [text.slice(0, i), text.slice(i + 1)];
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function setActiveNav(name) {
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.nav === name);
  }
}

function renderWhoami() {
  const box = clear(document.getElementById("whoami"));
  if (auth.mode === "off") {
    put(box, h("span", { class: "auth-off", title: "LINEAGEHOUSE_API__AUTH_ENABLED=false" }, "auth off"));
  } else if (auth.key) {
    const id = auth.key.split("_")[1] || "key";
    put(box, 
      h("span", { class: "key-id", title: "the API key of this tab (sessionStorage)" }, "key " + id),
      h("button", { class: "link-button", id: "logout", onclick: logout }, "Log out"),
    );
  }
}

function logout() {
  auth.key = "";
  loginNote = "Logged out.";
  navigate("#/login");
}

function renderLogin(view) {
  document.body.classList.add("logged-out");
  const input = h("input", {
    type: "password",
    id: "api-key",
    name: "key",
    placeholder: "lh_…",
    autocomplete: "off",
    spellcheck: "false",
  });
  const error = h("div", { class: "login-error", id: "login-error" }, loginNote);
  loginNote = "";
  const form = h(
    "form",
    { class: "login-card", id: "login-form" },
    h("h1", null, "Lineagehouse"),
    h("p", null, "Enter an API key with the read role. It is kept for this browser tab only."),
    h("label", { for: "api-key" }, "API key"),
    input,
    h("button", { type: "submit", class: "primary" }, "Log in"),
    error,
    h(
      "p",
      { class: "hint" },
      "Create one with ",
      h("code", null, "lineagehouse keys create --name me --role read"),
      " (lineagehouse up prints an admin key).",
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      error.textContent = "Enter a key.";
      return;
    }
    error.textContent = "Checking…";
    try {
      await checkKey(key);
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    auth.key = key;
    document.body.classList.remove("logged-out");
    renderWhoami();
    const target = wanted && !wanted.startsWith("#/login") ? wanted : "#/runs";
    wanted = "";
    navigate(target);
  });
  put(view, form);
  input.focus();
}

// When a view has finished rendering the hash it was opened for, `#app` carries
// data-rendered="<that hash>" ("#" for none): tests and other automation wait for it
// instead of for an element the previous view may also have had.
function markRendered(view, hash) {
  if (view.isConnected && location.hash === hash) app.dataset.rendered = hash || "#";
}

async function route() {
  const hash = location.hash;
  delete app.dataset.rendered;
  const { segments, params } = parseHash();
  const name = segments[0] || "runs";
  const view = h("div", { class: "view view-" + name });
  put(clear(app), view);
  if (name === "login") {
    if (auth.mode === "off") {
      navigate("#/runs");
      return;
    }
    setActiveNav("");
    renderLogin(view);
    markRendered(view, hash);
    return;
  }
  if (auth.mode === "on" && !auth.key) {
    wanted = location.hash;
    navigate("#/login");
    return;
  }
  document.body.classList.remove("logged-out");
  renderWhoami();
  const page = ROUTES[name];
  setActiveNav(page ? name : "");
  if (!page) {
    put(view, message("error", `No page "${name}".`));
    markRendered(view, hash);
    return;
  }
  try {
    await page(view, segments.slice(1), params);
  } catch (err) {
    put(view, message("error", explain(err)));
    console.error(err);
  }
  markRendered(view, hash);
}

onUnauthorized((err) => {
  if (auth.mode === "off") return;
  auth.key = "";
  loginNote = "Your key was not accepted: " + err.message;
  if (!location.hash.startsWith("#/login")) wanted = location.hash;
  navigate("#/login");
});

document.getElementById("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = document.getElementById("search-input").value.trim();
  if (q) navigate("#/search?" + new URLSearchParams({ q }));
});

async function start() {
  try {
    await probeAuth();
  } catch (err) {
    put(clear(app), message("error", "The API is not answering: " + explain(err)));
    return;
  }
  window.addEventListener("hashchange", route);
  await route();
}

start();
