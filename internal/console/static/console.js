// Copy buttons: <button data-copy="ID"> copies the value of the input with that id. Served
// from the console itself, as the Content-Security-Policy allows no inline script.
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) {
    return;
  }
  var input = document.getElementById(button.getAttribute("data-copy"));
  if (!input) {
    return;
  }
  var label = button.textContent;
  var copied = function () {
    button.textContent = "Copied";
    button.setAttribute("data-copied", "true");
    setTimeout(function () { button.textContent = label; }, 2000);
  };
  input.focus();
  input.select();
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(copied, function () {
      if (document.execCommand("copy")) { copied(); }
    });
  } else if (document.execCommand("copy")) {
    copied();
  }
});

// A link to a closed <details> (the Developers page's table of contents) opens it.
function openTarget() {
  var target = location.hash ? document.getElementById(decodeURIComponent(location.hash.slice(1))) : null;
  if (target && target.tagName === "DETAILS") {
    target.open = true;
  }
}
window.addEventListener("hashchange", openTarget);
document.addEventListener("DOMContentLoaded", openTarget);
