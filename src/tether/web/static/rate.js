// Keyboard shortcuts for the comparison screen: 1/2/3 pick A/tie/B, Ctrl+Enter submits.
// The server enforces every rule again; this only saves the rater clicks.
(function () {
  const form = document.getElementById("judge");
  if (!form) return;
  const started = Date.now();
  const rationale = document.getElementById("rationale");
  const keys = { "1": "A", "2": "tie", "3": "B" };
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      if (form.reportValidity()) { submit(); }
      return;
    }
    if (event.target === rationale || event.ctrlKey || event.metaKey || event.altKey) return;
    const choice = keys[event.key];
    if (choice) {
      const input = form.querySelector('input[name="choice"][value="' + choice + '"]');
      if (input) { input.checked = true; event.preventDefault(); }
    }
  });
  function submit() {
    document.getElementById("seconds").value = ((Date.now() - started) / 1000).toFixed(1);
    form.submit();
  }
  form.addEventListener("submit", function () {
    document.getElementById("seconds").value = ((Date.now() - started) / 1000).toFixed(1);
  });
})();
