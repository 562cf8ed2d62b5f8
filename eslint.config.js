import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'examples/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs'] },
        tsconfigRootDir: import.meta.dirname
      }
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error'
    }
  },
  // Layers: nix/, cache/, image/ and the helpers beside them sit below the stages and main.ts,
  // and never reach up into them.
  {
    files: ['src/nix/**', 'src/cache/**', 'src/image/**', 'src/sbom/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/stages/*', '**/pipeline/*', '**/main.js', '**/post.js', '**/inputs.js'],
              message: 'a lower layer must not import a stage, a pipeline, main, post or inputs'
            }
          ]
        }
      ]
    }
  },
  {
    // Stages are the pipelines' steps: they never reach up into a pipeline or the entry points.
    files: ['src/stages/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/pipeline/*', '**/main.js', '**/post.js'],
              message: 'a stage must not import a pipeline, main or post'
            }
          ]
        }
      ]
    }
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  // Scripts run on Node.
  { files: ['scripts/**/*.mjs'], languageOptions: { globals: globals.node } }
)
