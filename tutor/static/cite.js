() => {
  if (window.__tutorCites) return;
  window.__tutorCites = true;
  window.tutorShowSource = (id) => {
    const card = document.getElementById(id);
    if (!card) return false;
    const turn = card.closest('.src-turn');
    document.querySelectorAll('.src-turn').forEach(el => { el.style.display = (el === turn) ? '' : 'none'; });
    document.querySelectorAll('.src-card.active').forEach(el => el.classList.remove('active'));
    card.classList.add('active');
    card.open = true;
    card.scrollIntoView({behavior: 'smooth', block: 'start'});
    const mark = card.querySelector('mark');
    if (mark) setTimeout(() => mark.scrollIntoView({behavior: 'smooth', block: 'nearest'}), 350);
    return true;
  };
  document.addEventListener('click', (ev) => {
    const a = ev.target && ev.target.closest ? ev.target.closest('a[href^="#src-"]') : null;
    if (!a) return;
    ev.preventDefault();
    ev.stopPropagation();
    window.tutorShowSource(a.getAttribute('href').slice(1));
  }, true);
  // The chatbot's copy button copies the raw messages of a bubble: keep only the answer (it starts
  // after ANSWER_MARK; the thinking / rewrite blocks before it are dropped) and turn our citation
  // links back into plain [n].
  if (navigator.clipboard && navigator.clipboard.writeText) {
    const write = navigator.clipboard.writeText.bind(navigator.clipboard);
    navigator.clipboard.writeText = (s) => {
      if (typeof s === 'string') {
        const i = s.lastIndexOf('\x3c!--answer--\x3e');  // escaped: no comment markers in page JS
        if (i >= 0) s = s.slice(i + 13).replace(/^\n/, '');
        s = s.replace(/<a class="cite"[^>]*>(\[\d+\])<\/a>/g, '$1').replace(/&lt;/g, '<');
      }
      return write(s);
    };
  }
}
