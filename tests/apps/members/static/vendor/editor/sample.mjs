window.editorSample = 1;
