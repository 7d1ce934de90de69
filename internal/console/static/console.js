// The console's only script, served from the console itself (the Content-Security-Policy allows
// no inline script). Every page works without it; it upgrades them:
// - <button data-copy="ID"> copies the value (or text) of the element with that id;
// - <a data-dialog href="…"> opens the page's dialog part (?fragment=1) in a <dialog> instead
//   of going to the page; [data-close] in it closes it; a[data-autoopen] opens on load;
// - <form data-copy-key> asks the console for a key (a POST with the form's CSRF token, answered
//   as JSON with Cache-Control: no-store), puts it on the clipboard and keeps it nowhere;
// - <input data-autosubmit> sends its form when it changes (the Enabled checkbox).
"use strict";
document.documentElement.classList.add("js");

function say(el, text) {
  if (!el) {
    return;
  }
  el.textContent = text;
  setTimeout(function () { el.textContent = ""; }, 4000);
}

function copyValue(button) {
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source) {
    return;
  }
  var value = "value" in source ? source.value : source.textContent;
  var label = button.textContent;
  var icon = button.classList.contains("icon");
  var copied = function () {
    button.setAttribute("data-copied", "true");
    if (icon) {
      button.classList.add("done");
      setTimeout(function () { button.classList.remove("done"); }, 2000);
      return;
    }
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 2000);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(value).then(copied, function () {});
  } else if (source.select) {
    source.focus();
    source.select();
    if (document.execCommand("copy")) { copied(); }
  }
}

function openDialog(href) {
  var dialog = document.getElementById("dialog");
  if (!dialog || typeof dialog.showModal !== "function" || typeof fetch !== "function") {
    window.location.href = href;
    return;
  }
  var url = new URL(href, window.location.href);
  url.searchParams.set("fragment", "1");
  fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(function (resp) {
    if (!resp.ok || resp.redirected) {
      window.location.href = href; // an error or a sign-in: the whole page says it
      return;
    }
    return resp.text().then(function (html) {
      var body = dialog.querySelector(".dialog-body");
      body.innerHTML = html;
      var title = body.querySelector("h1");
      if (title) {
        title.id = "dialog-title";
        dialog.removeAttribute("aria-label");
        dialog.setAttribute("aria-labelledby", "dialog-title");
      }
      if (!dialog.open) {
        dialog.showModal();
      }
      var first = body.querySelector("input:not([type=hidden]):not([disabled]):not([type=checkbox]), select");
      if (first) {
        first.focus();
      }
    });
  }, function () { window.location.href = href; });
}

document.addEventListener("click", function (event) {
  var target = event.target;
  document.querySelectorAll("details.menu[open]").forEach(function (menu) {
    if (!menu.contains(target)) { menu.removeAttribute("open"); }
  });
  var copy = target.closest("button[data-copy]");
  if (copy) {
    copyValue(copy);
    return;
  }
  var opener = target.closest("a[data-dialog]");
  if (opener && event.button === 0 && !event.ctrlKey && !event.metaKey && !event.shiftKey && !event.altKey) {
    event.preventDefault();
    var menu = opener.closest("details.menu");
    if (menu) { menu.removeAttribute("open"); }
    openDialog(opener.getAttribute("href"));
    return;
  }
  var closer = target.closest("[data-close]");
  if (closer && closer.closest("dialog")) {
    event.preventDefault();
    closer.closest("dialog").close();
  }
});

document.addEventListener("submit", function (event) {
  var form = event.target.closest("form[data-copy-key]");
  if (!form || !navigator.clipboard || !window.isSecureContext) {
    return; // without a clipboard the form shows the key on a page of its own
  }
  event.preventDefault();
  var status = form.querySelector(".copied");
  fetch(form.action, {
    method: "POST", credentials: "same-origin", headers: { Accept: "application/json" },
    body: new URLSearchParams(new FormData(form))
  }).then(function (resp) {
    return resp.json().catch(function () { return {}; }).then(function (answer) {
      if (!resp.ok || !answer.key) { throw new Error(answer.error || "The key could not be read."); }
      return navigator.clipboard.writeText(answer.key);
    });
  }).then(function () { say(status, "Copied to clipboard"); }, function (err) { say(status, err.message); });
});

document.addEventListener("change", function (event) {
  var box = event.target.closest("input[data-autosubmit]");
  if (box && box.form) {
    box.form.requestSubmit();
  }
});

var auto = document.querySelector("a[data-autoopen]");
if (auto) {
  openDialog(auto.getAttribute("href"));
  var here = new URL(window.location.href);
  here.searchParams.delete("keys");
  window.history.replaceState(null, "", here.pathname + here.search);
}

// A link to a closed <details> (the Developers page's table of contents) opens it.
function openTarget() {
  var target = location.hash ? document.getElementById(decodeURIComponent(location.hash.slice(1))) : null;
  if (target && target.tagName === "DETAILS") {
    target.open = true;
  }
}
window.addEventListener("hashchange", openTarget);
document.addEventListener("DOMContentLoaded", openTarget);
