// "Add an earlier turn" on the red-team form: a role and a text field per turn, oldest first.
// Without scripts the form still takes a single prompt; the server checks the conversation either way.
(function () {
  const button = document.getElementById("add-turn");
  const template = document.getElementById("turn-template");
  if (!button || !template) return;
  button.addEventListener("click", function () {
    const turns = button.parentElement.querySelectorAll(".turn-input");
    const row = template.content.firstElementChild.cloneNode(true);
    // Alternate by default: user, assistant, user, ... (a system message is picked by hand).
    const last = turns.length ? turns[turns.length - 1].querySelector("select").value : "assistant";
    row.querySelector("select").value = last === "user" ? "assistant" : "user";
    button.before(row);
    row.querySelector("textarea").focus();
  });
})();
