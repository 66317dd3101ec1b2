// Building the screens with the DOM (never innerHTML with data: children's words are text).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Show a screen: its heading gets the focus, so screen readers and switch users start
// at the top of what changed.
export function show(...children) {
  const main = document.getElementById("app");
  main.replaceChildren(...children.flat());
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
  window.scrollTo(0, 0);
}

export function status(text) {
  const el = document.getElementById("status");
  if (el) el.textContent = text;
}

export function problemText(error) {
  return (error && error.message) || "Something went wrong.";
}

export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return h("p", {}, h("label", { for: id }, label), input);
}

export function formValues(form) {
  const values = {};
  for (const [key, value] of new FormData(form).entries()) {
    if (key in values) {
      values[key] = [].concat(values[key], value);
    } else {
      values[key] = value;
    }
  }
  return values;
}
