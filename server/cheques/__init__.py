"""Corporate cheque-book sale (issue 15): purchase rules, identity, linkage processing,
the branch display. docs/flows/cheques.md."""
