// The ipywidgets HTML manager typesets widget labels with the MathJax 2 call
// `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`. This site serves MathJax 3, which has
// no `Hub`, so the call would throw. Give it the MathJax 3 meaning before the widgets are drawn
// (this script runs before the manager's, and MathJax, loaded with `defer`, is there by then).
document.addEventListener("DOMContentLoaded", () => {
  const mathjax = window.MathJax;
  if (mathjax === undefined || mathjax.Hub !== undefined) return;
  mathjax.Hub = {
    Queue(command) {
      const element = command[2];
      const ready = (mathjax.startup && mathjax.startup.promise) || Promise.resolve();
      return ready.then(() => mathjax.typesetPromise([element]));
    },
  };
});
