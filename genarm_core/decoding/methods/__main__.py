from genarm_core.decoding.methods import markdown_table

print(markdown_table())
