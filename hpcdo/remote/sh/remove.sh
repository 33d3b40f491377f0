rm -rf -- {{ paths }}
