(v) => {
  const c = document.querySelector('#q-counter .q-count');
  if (c) {
    const limit = parseInt(c.dataset.limit || '0', 10);
    const n = [...(v || '')].length;
    c.textContent = n.toLocaleString('en-US') + ' / ' + limit.toLocaleString('en-US');
    c.classList.toggle('over', limit > 0 && n > limit);
  }
  return [];
}
