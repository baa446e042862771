"""The deliverable check of a task: field rules per deliverable template, extraction, traffic lights.

`rules` parses a template's rule line, `extract` reads values out of a file (machine-readable
outputs first, then text-layer PDF / DOCX / XLSX, OCR last), `ocr` runs rapidocr in a process pool,
`lights` turns readings into a light per field and one for the deliverable.
"""
