// The dashboard's only script, served from the binary. Pages work without it; it adds a
// confirmation to forms with a data-confirm attribute and an optional auto-refresh of the
// overview, remembered in localStorage.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }

  const refresh = document.getElementById("auto-refresh");
  if (refresh) {
    const key = "duespark.dashboard.autoRefresh";
    const intervalMs = 15000;
    let timer = null;
    const schedule = () => {
      window.clearTimeout(timer);
      if (refresh.checked) {
        timer = window.setTimeout(() => window.location.reload(), intervalMs);
      }
    };
    refresh.checked = window.localStorage.getItem(key) === "on";
    refresh.addEventListener("change", () => {
      window.localStorage.setItem(key, refresh.checked ? "on" : "off");
      schedule();
    });
    schedule();
  }
});
