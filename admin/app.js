// The admin page (a placeholder: the page is written on its own branch).
