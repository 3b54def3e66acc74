from .commands import main

if __name__ == "__main__":  # importing it (a walk over the package) runs nothing
    main()
